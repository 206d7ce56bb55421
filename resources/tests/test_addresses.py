"""Resource address, ip_stack and traffic-filter rules (domain.md §1.14, §2.12)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firezone import addresses as a
from firezone.addresses import AddressError, FilterError


def messages(resource_type: str, address: str | None, **kwargs: bool) -> tuple[str, ...]:
    with pytest.raises(AddressError) as info:
        a.normalize_address(resource_type, address, **kwargs)
    return info.value.messages


# --- dns ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "**.example.com",
        "app.**.example.com",
        "*.example.com",
        "foo.*.example.com",
        "app.*.*.example.com",
        "app.f??.example.com",
        "*?*.example.com",
        "app.**.web.**.example.com",
        "google.com",
        "myhost",
        "a",
        "**.httpbin",
        "bücher.de",
        "xn--bcher-kva.example",
        "my-host.internal",
        "Example.COM",
    ],
)
def test_dns_accepts_spec_examples(address: str) -> None:
    assert a.normalize_address("dns", address) == address


def test_dns_trims_whitespace() -> None:
    assert a.normalize_address("dns", "  \tgoogle.com \n") == "google.com"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost", a.MSG_DNS_LOCALHOST),
        ("a.localhost", a.MSG_DNS_LOCALHOST),
        ("a.LocalHost", a.MSG_DNS_LOCALHOST),
        ("*.com", a.MSG_DNS_IANA_WILDCARDS),
        ("com", a.MSG_DNS_IANA_WILDCARDS),
        ("?.*.uk", a.MSG_DNS_IANA_WILDCARDS),
        ("foo.*", a.MSG_DNS_TLD_WILDCARD),
        ("foo.c?m", a.MSG_DNS_TLD_WILDCARD),
        ("*", a.MSG_DNS_TLD_WILDCARD),
        ("a**.example.com", a.MSG_DNS_DOUBLE_WILDCARD),
        ("x.**b.example.com", a.MSG_DNS_DOUBLE_WILDCARD),
        ("a" * 64 + ".com", a.MSG_DNS_LABEL_TOO_LONG),
        ("1.2.3.4", a.MSG_DNS_IS_IP),
        ("10.0.0.0/8", a.MSG_DNS_IS_IP),
        ("::1", a.MSG_DNS_IS_IP),
        ("fe80::1:2", a.MSG_DNS_IS_IP),
        ("foo bar.com", a.MSG_DNS_CHARS),
        ("-foo.com", a.MSG_DNS_CHARS),
        ("foo-.com", a.MSG_DNS_CHARS),
        ("foo..com", a.MSG_DNS_CHARS),
        ("foo.com.", a.MSG_DNS_CHARS),
        ("foo_bar.com", a.MSG_DNS_CHARS),
        ("", a.MSG_BLANK),
        ("   ", a.MSG_BLANK),
        (None, a.MSG_BLANK),
    ],
)
def test_dns_rejections(address: str | None, message: str) -> None:
    assert message in messages("dns", address)


def test_dns_label_rules_first_failure_wins() -> None:
    # Long label beats the TLD wildcard rule; the TLD rules beat the IANA rule.
    assert messages("dns", "a" * 64 + ".*") == (a.MSG_DNS_LABEL_TOO_LONG,)
    assert messages("dns", "*.localhost") == (a.MSG_DNS_LOCALHOST,)


def test_dns_too_long() -> None:
    address = ".".join(["abcdefghi"] * 26)  # 259 characters
    assert a.MSG_DNS_TOO_LONG in messages("dns", address)
    assert a.normalize_address("dns", address[:253].rstrip(".")) is not None


def test_address_error_exposes_first_message() -> None:
    with pytest.raises(AddressError) as info:
        a.validate_dns_address("localhost")
    assert info.value.message == a.MSG_DNS_LOCALHOST
    assert isinstance(info.value, ValueError)


# --- ip -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        # Bare IPv6 addresses are single hosts (§8 item 8): these were wrongly refused before.
        ("::5", "::5"),
        ("fd00:2021:ffff::1", "fd00:2021:ffff::1"),
        ("100.128.0.1", "100.128.0.1"),
    ],
)
def test_ip_normalises(address: str, expected: str) -> None:
    assert a.normalize_address("ip", address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0.0.0.0", a.MSG_IP_ALL_IPV4),
        ("::", a.MSG_IP_ALL_IPV6),
        ("127.0.0.1", a.MSG_LOOPBACK),
        ("127.255.0.9", a.MSG_LOOPBACK),
        ("::1", a.MSG_LOOPBACK),
        ("100.64.0.1", "cannot be in the CIDR 100.64.0.0/10"),
        ("100.127.255.254", "cannot be in the CIDR 100.64.0.0/10"),
        ("fd00:2021:1111::5:bcfd", "cannot be in the CIDR fd00:2021:1111::/48"),
        ("fd00:2021:1111:ffff::1", "cannot be in the CIDR fd00:2021:1111::/48"),
        ("1.2.3.4/32", a.MSG_IP_INVALID),
        ("1.2.3", a.MSG_IP_INVALID),
        ("01.2.3.4", a.MSG_IP_INVALID),
        ("fe80::1%eth0", a.MSG_IP_INVALID),
        ("example.com", a.MSG_IP_INVALID),
        ("", a.MSG_BLANK),
    ],
)
def test_ip_rejections(address: str, message: str) -> None:
    assert messages("ip", address) == (message,)


# --- cidr ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.168.1.1/28", "192.168.1.0/28"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        (" 172.20.1.2/16 ", "172.20.0.0/16"),
        ("2001:db8::1/64", "2001:db8::/64"),
        ("1.2.3.4/32", "1.2.3.4/32"),
        ("100.128.0.0/10", "100.128.0.0/10"),
        ("fd00:2021:1112::/48", "fd00:2021:1112::/48"),
    ],
)
def test_cidr_normalises_to_network(address: str, expected: str) -> None:
    assert a.normalize_address("cidr", address) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.0", (a.MSG_CIDR_NETMASK,)),
        ("10.0.0.0/", (a.MSG_CIDR_NETMASK,)),
        ("10.0.0.0/33", (a.MSG_CIDR_NETMASK,)),
        ("::/129", (a.MSG_CIDR_NETMASK,)),
        ("10.0.0.0/x", (a.MSG_CIDR_NETMASK,)),
        ("foo/24", (a.MSG_CIDR_INVALID,)),
        ("foo", (a.MSG_CIDR_INVALID,)),
        ("127.0.0.0/24", (a.MSG_LOOPBACK,)),
        ("::1/128", (a.MSG_LOOPBACK,)),
        ("100.64.0.0/16", ("cannot be in the CIDR 100.64.0.0/10",)),
        ("100.0.0.0/8", ("cannot be in the CIDR 100.64.0.0/10",)),
        ("fd00:2021::/32", ("cannot be in the CIDR fd00:2021:1111::/48",)),
        ("0.0.0.0/8", (a.MSG_CIDR_INTERNET_DISABLED,)),
        ("0.0.0.0/0", (a.MSG_CIDR_INTERNET_DISABLED, a.MSG_LOOPBACK)),
        ("::/0", (a.MSG_CIDR_INTERNET_DISABLED, a.MSG_LOOPBACK)),
    ],
)
def test_cidr_rejections(address: str, expected: tuple[str, ...]) -> None:
    assert messages("cidr", address) == expected


def test_cidr_internet_message_depends_on_feature() -> None:
    assert messages("cidr", "0.0.0.0/4", internet_resource_enabled=True) == (
        a.MSG_CIDR_INTERNET_ENABLED,
    )
    assert messages("cidr", "0.0.0.0/4", internet_resource_enabled=False) == (
        a.MSG_CIDR_INTERNET_DISABLED,
    )


def test_internet_and_unknown_types() -> None:
    assert a.normalize_address("internet", "anything") is None
    assert a.normalize_address("internet", None) is None
    assert messages("bogus", "1.2.3.4") == (a.MSG_TYPE_INVALID,)


# --- ip_stack -----------------------------------------------------------------------------------


def test_ip_stack_rules() -> None:
    assert a.normalize_ip_stack("dns", None) == "dual"
    assert a.normalize_ip_stack("dns", "") == "dual"
    assert a.normalize_ip_stack("dns", "ipv6_only") == "ipv6_only"
    assert a.normalize_ip_stack("cidr", None) is None
    assert a.normalize_ip_stack("ip", "dual", previous_type="dns") is None
    for args in (("dns", "both"), ("ip", "dual"), ("internet", "ipv4_only")):
        with pytest.raises(AddressError) as info:
            a.normalize_ip_stack(*args)
        assert info.value.message == a.MSG_IP_STACK


# --- filters ------------------------------------------------------------------------------------


def test_filters_normalise() -> None:
    raw = [
        {"protocol": "tcp", "ports": ["80", "443", " 100 - 200 ", "8080-8090", 22, [5, 5]]},
        {"protocol": "udp", "ports": "53, 1000-2000"},
        {"protocol": "udp", "ports": ["[10,20)", "(30,40]", "(0,1]"]},
        {"protocol": "ICMP", "ports": ["1"]},
        {"protocol": "tcp"},
    ]
    assert a.normalize_filters(raw) == [
        {"protocol": "tcp", "ports": ["80", "443", "100 - 200", "8080 - 8090", "22", "5"]},
        {"protocol": "udp", "ports": ["53", "1000 - 2000"]},
        {"protocol": "udp", "ports": ["10 - 19", "31 - 40", "1"]},
        {"protocol": "icmp", "ports": []},
        {"protocol": "tcp", "ports": []},
    ]
    assert a.normalize_filters([]) == []
    assert a.normalize_filters(None) == []


@pytest.mark.parametrize(
    ("entry", "key", "message"),
    [
        ({"protocol": "tcp", "ports": ["a"]}, "0.ports", a.MSG_PORT_BAD_FORMAT),
        ({"protocol": "tcp", "ports": ["80-"]}, "0.ports", a.MSG_PORT_BAD_FORMAT),
        ({"protocol": "tcp", "ports": [True]}, "0.ports", a.MSG_PORT_BAD_FORMAT),
        ({"protocol": "tcp", "ports": ["8080-90"]}, "0.ports", a.MSG_PORT_LOWER_HIGHER),
        ({"protocol": "tcp", "ports": [[9, 3]]}, "0.ports", a.MSG_PORT_LOWER_HIGHER),
        ({"protocol": "udp", "ports": ["70000"]}, "0.ports", a.MSG_PORT_OUT_OF_RANGE),
        ({"protocol": "sctp"}, "0.protocol", a.MSG_FILTER_PROTOCOL_INVALID),
        ({"ports": ["80"]}, "0.protocol", a.MSG_BLANK),
    ],
)
def test_filter_errors(entry: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        a.normalize_filters([entry])
    assert info.value.errors == {key: [message]}
    assert info.value.message == message


def test_port_range_round_trip() -> None:
    assert a.parse_port_range("443") == (443, 443)
    assert a.parse_port_range("100 - 200") == (100, 200)
    assert a.format_port_range(100, 200) == "100 - 200"
    assert a.format_port_range(80, 80) == "80"


# --- properties ---------------------------------------------------------------------------------

RESOURCE_TYPES = st.sampled_from(["dns", "ip", "cidr", "internet"])


@given(RESOURCE_TYPES, st.text(max_size=300))
def test_never_crashes_on_arbitrary_text(resource_type: str, text: str) -> None:
    try:
        a.normalize_address(resource_type, text)
    except AddressError as exc:
        assert exc.messages and all(isinstance(m, str) and m for m in exc.messages)


@given(st.text(alphabet="0123456789abcdef:./-[]* ", max_size=60))
def test_never_crashes_on_ip_like_text(text: str) -> None:
    for resource_type in ("dns", "ip", "cidr"):
        with contextlib.suppress(AddressError):
            a.normalize_address(resource_type, text)


NETWORK_INPUT = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
)


@given(NETWORK_INPUT)
def test_cidr_output_is_canonical_and_round_trips(value: tuple[object, int]) -> None:
    ip, prefix = value
    try:
        normalised = a.normalize_address("cidr", f"{ip}/{prefix}")
    except AddressError:
        return
    assert normalised is not None
    network = ipaddress.ip_network(normalised, strict=True)  # host bits are clear
    assert str(network) == normalised
    assert network.prefixlen == prefix
    assert ipaddress.ip_address(str(ip)) in network
    assert a.normalize_address("cidr", normalised) == normalised
    for reserved in a.RESERVED_NETWORKS:
        assert not (network.version == reserved.version and network.overlaps(reserved))


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_ip_output_round_trips(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    try:
        normalised = a.normalize_address("ip", str(ip))
    except AddressError as exc:
        # Only the documented refusals can happen to a well-formed address.
        assert exc.message in {
            a.MSG_IP_ALL_IPV4,
            a.MSG_IP_ALL_IPV6,
            a.MSG_LOOPBACK,
            "cannot be in the CIDR 100.64.0.0/10",
            "cannot be in the CIDR fd00:2021:1111::/48",
        }
        return
    assert normalised == str(ip)
    assert a.normalize_address("ip", normalised) == normalised


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_port_ranges_round_trip(lower: int, upper: int) -> None:
    lower, upper = min(lower, upper), max(lower, upper)
    text = a.format_port_range(lower, upper)
    assert a.parse_port_range(text) == (lower, upper)
    assert a.normalize_ports([text]) == [text]
