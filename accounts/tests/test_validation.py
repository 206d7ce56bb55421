"""Pure account rules: slug, names, search domain and upstream DNS (domain.md §2.1)."""

from __future__ import annotations

import ipaddress
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts import validation as v
from firezone.errors import ValidationFailed

# --- slug and names -----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["acme", "ACME_corp", "a_b", "x" * 100, "happy_panda_42"])
def test_valid_slugs_are_lower_cased(slug: str) -> None:
    assert v.clean_slug(slug) == slug.lower()


@pytest.mark.parametrize(
    ("slug", "errors"),
    [
        ("ab", ["should be at least 3 character(s)"]),
        ("x" * 101, ["should be at most 100 character(s)"]),
        ("acme-corp", [v.MSG_SLUG_CHARS]),
        ("acme corp", [v.MSG_SLUG_CHARS]),
        ("ü_corp", [v.MSG_SLUG_CHARS]),
        ("a-", ["should be at least 3 character(s)", v.MSG_SLUG_CHARS]),
        ("SignIn", [v.MSG_SLUG_RESERVED]),
        ("admin", [v.MSG_SLUG_RESERVED]),
        ("sign_up", [v.MSG_SLUG_RESERVED]),
        ("c89bcc8c93924daea40d888aef6d28e0", [v.MSG_SLUG_UUID]),
        ("c89bcc8c-9392-4dae-a40d-888aef6d28e0", [v.MSG_SLUG_CHARS, v.MSG_SLUG_UUID]),
    ],
)
def test_invalid_slugs(slug: str, errors: list[str]) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.clean_slug(slug)
    assert info.value.errors == {"slug": errors}


def test_id_or_slug_lookup_input() -> None:
    assert v.is_valid_id_or_slug("acme_corp")
    assert v.is_valid_id_or_slug(str(uuid.uuid4()))
    assert not v.is_valid_id_or_slug("acme-corp")
    assert not v.is_valid_id_or_slug("")


def test_names() -> None:
    assert v.clean_name("  Acme Corp ") == "Acme Corp"
    assert v.clean_legal_name(" A ") == "A"
    for bad, message in [("ab", "should be at least 3 character(s)"), ("  ", "can't be blank")]:
        with pytest.raises(ValidationFailed) as info:
            v.clean_name(bad)
        assert info.value.errors == {"name": [message]}
    with pytest.raises(ValidationFailed) as info:
        v.clean_name("x" * 65)
    assert info.value.errors == {"name": ["should be at most 64 character(s)"]}
    with pytest.raises(ValidationFailed):
        v.clean_legal_name("x" * 256)


# --- search domain ------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["example.com", "corp.Example.COM", "us-east1.c.com", "a.io"])
def test_valid_search_domains(domain: str) -> None:
    assert v.clean_search_domain(f"  {domain} ") == domain


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("example", v.MSG_SEARCH_DOMAIN_FQDN),
        ("example.c", v.MSG_SEARCH_DOMAIN_FQDN),
        ("example.c0m", v.MSG_SEARCH_DOMAIN_FQDN),
        ("example.com.", v.MSG_SEARCH_DOMAIN_FQDN),
        ("-example.com", v.MSG_SEARCH_DOMAIN_FQDN),
        ("exa_mple.com", v.MSG_SEARCH_DOMAIN_FQDN),
        (".example.com", v.MSG_SEARCH_DOMAIN_LEADING_DOT),
        ("a..example.com", v.MSG_SEARCH_DOMAIN_DOUBLE_DOT),
        ("a" * 64 + ".com", v.MSG_SEARCH_DOMAIN_LABEL),
        (".".join(["abcdefg"] * 40) + ".com", v.MSG_SEARCH_DOMAIN_TOO_LONG),
    ],
)
def test_invalid_search_domains(domain: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.clean_search_domain(domain)
    assert info.value.errors == {"search_domain": [message]}


def test_empty_search_domain_clears_it() -> None:
    assert v.clean_search_domain(None) is None
    assert v.clean_search_domain("") is None
    assert v.clean_search_domain("   ") is None
    assert v.search_domain_errors("") == [v.MSG_SEARCH_DOMAIN_EMPTY]


# --- upstream DNS -------------------------------------------------------------------------------


def resolvers(*addresses: str, protocol: str = "ip_port") -> list[dict[str, str]]:
    return [{"protocol": protocol, "address": address} for address in addresses]


def test_valid_upstream_dns_keeps_order_and_trims() -> None:
    entries = resolvers(" 8.8.8.8 ", "1.1.1.1:5353", "[2606:4700:4700::1111]:53", "2001:4860::8888")
    assert v.clean_clients_upstream_dns(entries) == resolvers(
        "8.8.8.8", "1.1.1.1:5353", "[2606:4700:4700::1111]:53", "2001:4860::8888"
    )
    assert v.clean_clients_upstream_dns([]) == []
    assert v.clean_clients_upstream_dns(None) == []


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        ("1.1.1.1", "1.1.1.1:53"),
        ("1.1.1.1:853", "1.1.1.1:853"),
        ("2606:4700:4700::1111", "[2606:4700:4700::1111]:53"),
        ("[2606:4700:4700:0::1111]:5353", "[2606:4700:4700::1111]:5353"),
    ],
)
def test_normalize_upstream_dns_address(address: str, normalised: str) -> None:
    assert v.normalize_upstream_dns_address(address) == normalised


@pytest.mark.parametrize(
    ("entry", "errors"),
    [
        (
            {"protocol": "ip_port", "address": "dns.google"},
            {"address": [v.MSG_DNS_ADDRESS_INVALID]},
        ),
        ({"protocol": "ip_port", "address": "1.1.1.1:0"}, {"address": [v.MSG_DNS_ADDRESS_INVALID]}),
        (
            {"protocol": "ip_port", "address": "1.1.1.1:65536"},
            {"address": [v.MSG_DNS_ADDRESS_INVALID]},
        ),
        (
            {"protocol": "ip_port", "address": "[1.1.1.1]:53"},
            {"address": [v.MSG_DNS_ADDRESS_INVALID]},
        ),
        ({"protocol": "ip_port", "address": "::1:53"}, {}),
        (
            {"protocol": "ip_port", "address": "1.1.1.1/32"},
            {"address": [v.MSG_DNS_ADDRESS_INVALID]},
        ),
        (
            {"protocol": "ip_port", "address": "100.64.0.1"},
            {"address": ["cannot be in the CIDR 100.64.0.0/10"]},
        ),
        (
            {"protocol": "ip_port", "address": "[fd00:2021:1111::1]:53"},
            {"address": ["cannot be in the CIDR fd00:2021:1111::/48"]},
        ),
        (
            {"protocol": "dns_over_tls", "address": "1.1.1.1"},
            {"protocol": [v.MSG_DNS_PROTOCOL_UNSUPPORTED]},
        ),
        (
            {"protocol": "dns_over_http", "address": "1.1.1.1"},
            {"protocol": [v.MSG_DNS_PROTOCOL_UNSUPPORTED]},
        ),
        ({"protocol": "carrier_pigeon", "address": "1.1.1.1"}, {"protocol": ["is invalid"]}),
        ({"address": "1.1.1.1"}, {"protocol": ["can't be blank"]}),
        ({"protocol": "ip_port", "address": "  "}, {"address": ["can't be blank"]}),
    ],
)
def test_upstream_dns_entry_errors(entry: dict[str, str], errors: dict[str, list[str]]) -> None:
    if not errors:
        v.clean_clients_upstream_dns([entry])
        return
    with pytest.raises(ValidationFailed) as info:
        v.clean_clients_upstream_dns([entry])
    assert info.value.errors == {f"clients_upstream_dns.0.{k}": m for k, m in errors.items()}


def test_ipv6_resolver_near_reserved_range_is_allowed() -> None:
    # §8 item 8: a bare IPv6 address is a /128, so this one is not inside fd00:2021:1111::/48.
    assert v.clean_clients_upstream_dns(resolvers("fd00:2021:ffff::1")) == resolvers(
        "fd00:2021:ffff::1"
    )


def test_duplicate_resolvers_after_default_port() -> None:
    with pytest.raises(ValidationFailed) as info:
        v.clean_clients_upstream_dns(resolvers("8.8.8.8", "8.8.8.8:53"))
    assert info.value.errors == {"clients_upstream_dns": [v.MSG_DNS_NOT_UNIQUE]}
    with pytest.raises(ValidationFailed):
        v.clean_clients_upstream_dns(resolvers("2001:db8::1", "[2001:DB8:0::1]:53"))
    assert len(v.clean_clients_upstream_dns(resolvers("8.8.8.8", "8.8.8.8:54"))) == 2


def test_clean_config_update_collects_all_errors() -> None:
    assert v.clean_config_update({"search_domain": "corp.example.com"}) == {
        "search_domain": "corp.example.com"
    }
    notifications = {"outdated_gateway": {"enabled": False}}
    assert v.clean_config_update({"notifications": notifications}) == {
        "notifications": notifications
    }
    with pytest.raises(ValidationFailed) as info:
        v.clean_config_update(
            {
                "search_domain": "example",
                "clients_upstream_dns": resolvers("nope"),
                "notifications": {"outdated_gateway": True},
            }
        )
    assert info.value.errors == {
        "search_domain": [v.MSG_SEARCH_DOMAIN_FQDN],
        "clients_upstream_dns.0.address": [v.MSG_DNS_ADDRESS_INVALID],
        "notifications": ["is invalid"],
    }


# --- properties ---------------------------------------------------------------------------------


@given(st.text(max_size=80))
def test_upstream_dns_never_crashes(text: str) -> None:
    try:
        v.clean_clients_upstream_dns(resolvers(text))
    except ValidationFailed as exc:
        assert exc.message


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(1, 65535))
def test_valid_resolvers_normalise_consistently(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    text = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    try:
        v.clean_clients_upstream_dns(resolvers(text))
    except ValidationFailed as exc:
        first = next(iter(exc.errors.values()))[0]
        assert first.startswith("cannot be in the CIDR")
        return
    normalised = v.normalize_upstream_dns_address(text)
    assert v.normalize_upstream_dns_address(normalised) == normalised
    if port == 53:
        assert v.normalize_upstream_dns_address(str(ip)) == normalised


@given(st.text(max_size=120))
def test_slug_and_search_domain_never_crash(text: str) -> None:
    for fn in (v.clean_slug, v.clean_search_domain):
        try:
            fn(text)
        except ValidationFailed as exc:
            assert exc.errors
