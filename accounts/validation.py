"""Pure account validation rules (domain.md §1.1, §2.1): slug, name, and the `config` embed.

Nothing here touches the database (slug uniqueness is the `accounts_slug_index` constraint's job).
Every `*_errors` function returns a list of messages (empty = valid); `clean_*` functions return the
normalised value or raise `firezone.errors.ValidationFailed` (the one bad-input error), whose
`errors` maps field paths to messages: `"search_domain"`, `"clients_upstream_dns"` (list-level
errors such as duplicates) and `"clients_upstream_dns.<index>.protocol"` /
`"clients_upstream_dns.<index>.address"`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Final

from firezone.addresses import (
    IPAddress,
    host_network,
    parse_ip,
    reserved_cidr_message,
    reserved_network_containing,
)
from firezone.errors import ValidationFailed

MSG_BLANK: Final = "can't be blank"
MSG_INVALID: Final = "is invalid"

# --- slug and names -----------------------------------------------------------------------------

SLUG_MIN_LENGTH: Final = 3
SLUG_MAX_LENGTH: Final = 100
# The last line: first path segments the portal routes itself (firezone.web.session).
RESERVED_SLUGS: Final = frozenset(
    """
    sign_up signup register sign_in signin log_in login sign_out signout auth authorize
    authenticate create update delete claim account me you admin user system internal
    static assets images browser healthz metrics try dev error client gateway relay live api
    """.split()  # noqa: SIM905 (a word list reads better than a literal)
)
_SLUG_CHARS: Final = re.compile(r"[a-zA-Z0-9_]+", re.ASCII)

MSG_SLUG_CHARS: Final = "can only contain letters, numbers, and underscores"
MSG_SLUG_RESERVED: Final = "is reserved"
MSG_SLUG_UUID: Final = "cannot be a valid UUID"
MSG_ID_OR_SLUG: Final = "Account ID or Slug contains invalid characters"


def _length_errors(value: str, minimum: int, maximum: int) -> list[str]:
    if len(value) < minimum:
        return [f"should be at least {minimum} character(s)"]
    if len(value) > maximum:
        return [f"should be at most {maximum} character(s)"]
    return []


def is_uuid(value: str) -> bool:
    """True for anything `uuid.UUID` accepts (hyphenated or 32 hex digits)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def slug_errors(slug: str) -> list[str]:
    """Messages for a (lower-cased) slug: length 3-100, `[a-zA-Z0-9_]`, not reserved, not a UUID."""
    errors = _length_errors(slug, SLUG_MIN_LENGTH, SLUG_MAX_LENGTH)
    if not _SLUG_CHARS.fullmatch(slug):
        errors.append(MSG_SLUG_CHARS)
    if slug in RESERVED_SLUGS:
        errors.append(MSG_SLUG_RESERVED)
    if is_uuid(slug):
        errors.append(MSG_SLUG_UUID)
    return errors


def clean_slug(slug: str) -> str:
    """Lower-case and validate a slug (uniqueness is checked by the database)."""
    slug = slug.lower()
    if errors := slug_errors(slug):
        raise ValidationFailed({"slug": errors})
    return slug


def clean_name(name: str) -> str:
    """Account `name`: trimmed, 3-64 characters."""
    return _clean_text("name", name, 3, 64)


def clean_legal_name(legal_name: str) -> str:
    """Account `legal_name`: trimmed, 1-255 characters."""
    return _clean_text("legal_name", legal_name, 1, 255)


def _clean_text(field: str, value: str, minimum: int, maximum: int) -> str:
    """`value` trimmed; blank or out of `minimum`-`maximum` characters raises for `field`."""
    value = value.strip()
    if not value:
        raise ValidationFailed({field: [MSG_BLANK]})
    if errors := _length_errors(value, minimum, maximum):
        raise ValidationFailed({field: errors})
    return value


def is_valid_id_or_slug(value: str) -> bool:
    """Whether `value` may be looked up as an account id or slug (else MSG_ID_OR_SLUG)."""
    return is_uuid(value) or bool(_SLUG_CHARS.fullmatch(value))


# --- config.search_domain -----------------------------------------------------------------------

_FQDN: Final = re.compile(r"[a-z0-9][a-z0-9.-]*\.[a-z]{2,}", re.IGNORECASE | re.ASCII)

MSG_SEARCH_DOMAIN_EMPTY: Final = "cannot be empty"
MSG_SEARCH_DOMAIN_TOO_LONG: Final = "must not exceed 255 characters"
MSG_SEARCH_DOMAIN_LEADING_DOT: Final = "must not start with a dot"
MSG_SEARCH_DOMAIN_DOUBLE_DOT: Final = "must not contain consecutive dots"
MSG_SEARCH_DOMAIN_FQDN: Final = "must be a valid fully-qualified domain name"
MSG_SEARCH_DOMAIN_LABEL: Final = "each label must not exceed 63 characters"


def search_domain_errors(domain: str) -> list[str]:
    """The first failing search-domain rule (connlib rejects the whole config on a bad one)."""
    if domain == "":
        return [MSG_SEARCH_DOMAIN_EMPTY]
    if len(domain) > 255:
        return [MSG_SEARCH_DOMAIN_TOO_LONG]
    if domain.startswith("."):
        return [MSG_SEARCH_DOMAIN_LEADING_DOT]
    if ".." in domain:
        return [MSG_SEARCH_DOMAIN_DOUBLE_DOT]
    if not _FQDN.fullmatch(domain):
        return [MSG_SEARCH_DOMAIN_FQDN]
    if any(len(label) > 63 for label in domain.split(".")):
        return [MSG_SEARCH_DOMAIN_LABEL]
    return []


def clean_search_domain(domain: object) -> str | None:
    """Trimmed search domain; None (and, as form input, an empty string) means "none"."""
    if domain is None:
        return None
    if not isinstance(domain, str):
        raise ValidationFailed({"search_domain": [MSG_INVALID]})
    domain = domain.strip()
    if not domain:
        # Like the original's form casting: an empty input clears the setting.
        return None
    if errors := search_domain_errors(domain):
        raise ValidationFailed({"search_domain": errors})
    return domain


# --- config.clients_upstream_dns ----------------------------------------------------------------

UPSTREAM_DNS_PROTOCOLS: Final = ("ip_port", "dns_over_tls", "dns_over_http")
SUPPORTED_UPSTREAM_DNS_PROTOCOLS: Final = ("ip_port",)
DEFAULT_DNS_PORT: Final = 53

MSG_DNS_PROTOCOL_UNSUPPORTED: Final = "this type of DNS provider is not supported yet"
MSG_DNS_ADDRESS_INVALID: Final = "must be a valid IP address"
MSG_DNS_NOT_UNIQUE: Final = "all addresses must be unique"

_BRACKETED: Final = re.compile(r"\[([^\[\]]+)\]:(\d{1,5})", re.ASCII)
_IPV4_PORT: Final = re.compile(r"([0-9.]+):(\d{1,5})", re.ASCII)


def parse_upstream_dns_address(address: str) -> tuple[IPAddress, int]:
    """Parse `IP`, `IPv4:port` or `[IPv6]:port` into (ip, port); the port defaults to 53.

    Raises ValueError when the text is none of those or the port is outside 1-65535.
    """
    if match := _BRACKETED.fullmatch(address):
        ip = parse_ip(match[1])
        if ip.version != 6:
            raise ValueError("brackets are only for IPv6 addresses")
        port = int(match[2])
    elif match := _IPV4_PORT.fullmatch(address):
        ip = parse_ip(match[1])
        port = int(match[2])
    else:
        ip = parse_ip(address)
        port = DEFAULT_DNS_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return ip, port


def normalize_upstream_dns_address(address: str) -> str:
    """`ip:port` / `[ipv6]:port` with the default port: the form sent to connlib and compared
    for uniqueness. `address` must already be valid."""
    ip, port = parse_upstream_dns_address(address.strip())
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def upstream_dns_address_errors(address: str) -> list[str]:
    """Messages for a trimmed upstream resolver address."""
    try:
        ip, _port = parse_upstream_dns_address(address)
    except ValueError:
        return [MSG_DNS_ADDRESS_INVALID]
    # A bare address is one host (/32 or /128), not the /32 the original used for IPv6 (§8 item 8).
    if reserved := reserved_network_containing(host_network(ip)):
        return [reserved_cidr_message(reserved)]
    return []


def clean_clients_upstream_dns(entries: object) -> list[dict[str, str]]:
    """Validate `clients_upstream_dns`; returns `[{"protocol", "address"}]` in the given order,
    with addresses trimmed (the port is left as entered; see normalize_upstream_dns_address)."""
    if entries is None:
        return []
    if not isinstance(entries, list | tuple):
        raise ValidationFailed({"clients_upstream_dns": [MSG_INVALID]})
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        prefix = f"clients_upstream_dns.{index}"
        if not isinstance(entry, Mapping):
            errors[prefix] = [MSG_INVALID]
            continue
        protocol = entry.get("protocol")
        address = entry.get("address")
        protocol = protocol.strip() if isinstance(protocol, str) else protocol
        address = address.strip() if isinstance(address, str) else address
        if not protocol:
            errors[f"{prefix}.protocol"] = [MSG_BLANK]
        elif protocol not in UPSTREAM_DNS_PROTOCOLS:
            errors[f"{prefix}.protocol"] = [MSG_INVALID]
        elif protocol not in SUPPORTED_UPSTREAM_DNS_PROTOCOLS:
            errors[f"{prefix}.protocol"] = [MSG_DNS_PROTOCOL_UNSUPPORTED]
        if not address:
            errors[f"{prefix}.address"] = [MSG_BLANK]
        elif not isinstance(address, str):
            errors[f"{prefix}.address"] = [MSG_INVALID]
        elif address_errors := upstream_dns_address_errors(address):
            errors[f"{prefix}.address"] = address_errors
        if isinstance(protocol, str) and isinstance(address, str):
            cleaned.append({"protocol": protocol, "address": address})
    if not errors:
        normalised = [normalize_upstream_dns_address(e["address"]) for e in cleaned]
        if len(set(normalised)) != len(normalised):
            errors["clients_upstream_dns"] = [MSG_DNS_NOT_UNIQUE]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


# --- the whole config embed ---------------------------------------------------------------------


def clean_config_update(attrs: Mapping[str, object]) -> dict[str, object]:
    """Validate the supplied `config` keys (merge semantics: only given keys are returned).

    Handles `search_domain` and `clients_upstream_dns`; `notifications` is passed through after a
    shape check (a mapping of mappings). All field errors are collected into one exception.
    """
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, object] = {}
    if "search_domain" in attrs:
        try:
            cleaned["search_domain"] = clean_search_domain(attrs["search_domain"])
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if "clients_upstream_dns" in attrs:
        try:
            cleaned["clients_upstream_dns"] = clean_clients_upstream_dns(
                attrs["clients_upstream_dns"]
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if "notifications" in attrs:
        notifications = attrs["notifications"]
        if not isinstance(notifications, Mapping) or not all(
            isinstance(value, Mapping) for value in notifications.values()
        ):
            errors["notifications"] = [MSG_INVALID]
        else:
            cleaned["notifications"] = {key: dict(value) for key, value in notifications.items()}
    if errors:
        raise ValidationFailed(errors)
    return cleaned
