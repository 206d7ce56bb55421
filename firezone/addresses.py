"""Resource address, IP stack and traffic-filter validation (domain.md §1.14, §2.12).

Pure functions: no database access, so forms, services and the REST API share one set of rules.
Every validator trims surrounding whitespace first (the original only did so on create, §8 item 16)
and either returns the normalised value or raises `AddressError` / `FilterError`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOURCE_TYPES: Final = ("dns", "ip", "cidr", "internet")
IP_STACKS: Final = ("dual", "ipv4_only", "ipv6_only")
DEFAULT_IP_STACK: Final = "dual"

# Tunnel ranges: clients/gateways get addresses from 100.64.0.0/11 and fd00:2021:1111::/107, and the
# whole surrounding blocks are kept free of resources and upstream resolvers (§2.9).
RESERVED_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd00:2021:1111::/48"),
)

_ALL_IPV4: Final = ipaddress.ip_network("0.0.0.0/32")
_ALL_IPV6: Final = ipaddress.ip_network("::/128")
_LOOPBACK_IPV4: Final = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_IPV6: Final = ipaddress.ip_network("::1/128")

MSG_BLANK: Final = "can't be blank"
MSG_DNS_TOO_LONG: Final = "should be at most 253 character(s)"
MSG_DNS_IS_IP: Final = "IP addresses are not allowed, use an IP Resource instead"
MSG_DNS_CHARS: Final = (
    "must be a valid hostname (letters, digits, hyphens, dots; wildcards *, ?, ** allowed)"
)
MSG_DNS_LABEL_TOO_LONG: Final = "each label must not exceed 63 characters"
MSG_DNS_TLD_WILDCARD: Final = "TLD cannot contain wildcards"
MSG_DNS_LOCALHOST: Final = (
    "localhost cannot be used as a TLD. "
    "Try adding a DNS alias to /etc/hosts on the Gateway(s) instead"
)
MSG_DNS_DOUBLE_WILDCARD: Final = "wildcard pattern must not contain ** in the middle of a label"
MSG_DNS_ONLY_WILDCARDS: Final = "wildcard pattern must include a valid domain"
MSG_DNS_IANA_WILDCARDS: Final = "domain for IANA TLDs cannot consist solely of wildcards"
MSG_IP_INVALID: Final = "is not a valid IP address"
MSG_IP_ALL_IPV4: Final = "cannot contain all IPv4 addresses"
MSG_IP_ALL_IPV6: Final = "cannot contain all IPv6 addresses"
MSG_LOOPBACK: Final = "cannot contain loopback addresses"
MSG_CIDR_NETMASK: Final = "CIDR netmask is invalid or missing"
MSG_CIDR_INVALID: Final = "is not a valid CIDR range"
MSG_CIDR_INTERNET_ENABLED: Final = (
    "the Internet Resource is already created in your account. Define a Policy for it instead"
)
MSG_CIDR_INTERNET_DISABLED: Final = (
    "routing all traffic through Firezone is available on paid plans using the Internet Resource"
)
MSG_TYPE_INVALID: Final = "is invalid"
MSG_IP_STACK: Final = (
    "IP stack must be one of 'dual', 'ipv4_only', 'ipv6_only' for DNS resources or NULL for others"
)
MSG_FILTER_PROTOCOL_INVALID: Final = "is invalid"
MSG_PORT_BAD_FORMAT: Final = "bad format"
MSG_PORT_LOWER_HIGHER: Final = "lower value cannot be higher than upper value"
MSG_PORT_OUT_OF_RANGE: Final = "port is not within valid range"


def reserved_cidr_message(network: IPNetwork) -> str:
    """The error for an address inside a reserved tunnel range, e.g. for upstream DNS too."""
    return f"cannot be in the CIDR {network}"


class AddressError(ValueError):
    """An invalid resource address; `message` is the first error, `messages` all of them."""

    def __init__(self, messages: str | Sequence[str]) -> None:
        listed = [messages] if isinstance(messages, str) else list(dict.fromkeys(messages))
        if not listed:
            raise ValueError("AddressError needs at least one message")
        super().__init__("; ".join(listed))
        self.messages: tuple[str, ...] = tuple(listed)
        self.message: str = listed[0]


# --- DNS names ----------------------------------------------------------------------------------

# Addresses that look like IP literals (with an optional prefix) belong in ip/cidr resources.
_IPV4_LIKE: Final = re.compile(r"(\d+\.){3}\d+(/\d+)?", re.ASCII)
_IPV6_LIKE: Final = re.compile(
    r"([0-9a-fA-F]{0,4}:){1,7}[0-9a-fA-F]{0,4}(/\d+)?"
    r"|::([0-9a-fA-F]{0,4}:){0,6}[0-9a-fA-F]{0,4}(/\d+)?",
    re.ASCII,
)
_WILDCARDS_ONLY: Final = re.compile(r"[*?]+")

# IANA generic TLDs plus two-letter ccTLDs: a name under one of them must have a real label.
COMMON_TLDS: Final = frozenset(
    """
    com org net edu gov mil biz info name mobi pro
    ac ad ae af ag ai al am ao ar as at au aw ax az
    ba bb bd be bf bg bh bi bj bm bn bo br bs bt bv bw by bz
    ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz
    de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr
    ga gb gd ge gf gg gh gi gl gm gn gp gq gr gt gu gw gy hk
    hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp
    ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly
    ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz
    na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py
    qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv sx sy sz
    tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz
    va vc ve vg vi vn vu wf ws ye yt za zm zw
    """.split()  # noqa: SIM905 (a word list reads better than a literal)
)


def _is_label_edge_char(char: str) -> bool:
    # ASCII letters/digits, any Unicode letter (str.isalpha is exactly \p{L}), or a wildcard.
    return ("0" <= char <= "9") or char.isalpha() or char in "*?"


def _is_valid_label(label: str) -> bool:
    if not label or not _is_label_edge_char(label[0]) or not _is_label_edge_char(label[-1]):
        return False
    return all(char == "-" or _is_label_edge_char(char) for char in label[1:-1])


def _dns_label_error(address: str) -> str | None:
    """The label rules of §2.12, in order: the first failing rule wins."""
    labels = address.split(".")
    tld = labels[-1].lower()
    others = labels[:-1]
    if any(len(label) > 63 for label in labels):
        return MSG_DNS_LABEL_TOO_LONG
    if "*" in tld or "?" in tld:
        return MSG_DNS_TLD_WILDCARD
    if tld == "localhost":
        return MSG_DNS_LOCALHOST
    if any("**" in label and label != "**" for label in others):
        return MSG_DNS_DOUBLE_WILDCARD
    if all(label == "*" for label in labels):
        return MSG_DNS_ONLY_WILDCARDS
    if tld in COMMON_TLDS and all(_WILDCARDS_ONLY.fullmatch(label) for label in others):
        return MSG_DNS_IANA_WILDCARDS
    return None


def validate_dns_address(address: str | None) -> str:
    """Validate a `dns` resource address (a hostname with `*`, `**`, `?` wildcards).

    Returns the trimmed address (case is kept); all failing checks are reported together.
    """
    address = (address or "").strip()
    if not address:
        raise AddressError(MSG_BLANK)
    errors: list[str] = []
    if len(address) > 253:
        errors.append(MSG_DNS_TOO_LONG)
    if _IPV4_LIKE.fullmatch(address) or _IPV6_LIKE.fullmatch(address):
        errors.append(MSG_DNS_IS_IP)
    if not all(_is_valid_label(label) for label in address.split(".")):
        errors.append(MSG_DNS_CHARS)
    label_error = _dns_label_error(address)
    if label_error:
        errors.append(label_error)
    if errors:
        raise AddressError(errors)
    return address


# --- IP addresses and CIDR ranges ---------------------------------------------------------------


def parse_ip(text: str) -> IPAddress:
    """Strictly parse one IPv4/IPv6 address: no prefix, no zone id, no leading zeros."""
    if "%" in text or "/" in text:
        raise ValueError(f"not a bare IP address: {text!r}")
    return ipaddress.ip_address(text)


def host_network(ip: IPAddress) -> IPNetwork:
    """The single-address network of `ip`: /32 for IPv4 and /128 for IPv6 (§8 item 8 fixed)."""
    return ipaddress.ip_network(ip)


def reserved_network_containing(network: IPNetwork) -> IPNetwork | None:
    """The reserved tunnel range `network` overlaps, if any."""
    for reserved in RESERVED_NETWORKS:
        if network.version == reserved.version and network.overlaps(reserved):
            return reserved
    return None


def _overlaps(network: IPNetwork, other: IPNetwork) -> bool:
    return network.version == other.version and network.overlaps(other)


def validate_ip_address(address: str | None) -> str:
    """Validate an `ip` resource address; returns the canonical text of the address."""
    address = (address or "").strip()
    if not address:
        raise AddressError(MSG_BLANK)
    try:
        ip = parse_ip(address)
    except ValueError:
        raise AddressError(MSG_IP_INVALID) from None
    network = host_network(ip)
    errors: list[str] = []
    if _overlaps(network, _ALL_IPV4):
        errors.append(MSG_IP_ALL_IPV4)
    if _overlaps(network, _LOOPBACK_IPV4) or _overlaps(network, _LOOPBACK_IPV6):
        errors.append(MSG_LOOPBACK)
    if _overlaps(network, _ALL_IPV6):
        errors.append(MSG_IP_ALL_IPV6)
    if not errors and (reserved := reserved_network_containing(network)):
        errors.append(reserved_cidr_message(reserved))
    if errors:
        raise AddressError(errors)
    return str(ip)


def parse_cidr(text: str) -> IPNetwork:
    """Parse `address/prefix` into its network (host bits cleared).

    Raises AddressError with the netmask message when the prefix is missing or out of range and
    the generic CIDR message when the address part is not an IP address.
    """
    address, slash, prefix = text.rpartition("/")
    if not slash:
        try:
            parse_ip(text)
        except ValueError:
            raise AddressError(MSG_CIDR_INVALID) from None
        raise AddressError(MSG_CIDR_NETMASK)
    try:
        ip = parse_ip(address)
    except ValueError:
        raise AddressError(MSG_CIDR_INVALID) from None
    max_prefix = 32 if ip.version == 4 else 128
    if not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 3):
        raise AddressError(MSG_CIDR_NETMASK)
    if int(prefix) > max_prefix:
        raise AddressError(MSG_CIDR_NETMASK)
    return ipaddress.ip_network(f"{ip}/{int(prefix)}", strict=False)


def validate_cidr_address(address: str | None, *, internet_resource_enabled: bool = False) -> str:
    """Validate a `cidr` resource address; returns it normalised to the network address.

    `internet_resource_enabled` is the account's feature flag: it only changes the wording of the
    "routes everything" error.
    """
    address = (address or "").strip()
    if not address:
        raise AddressError(MSG_BLANK)
    network = parse_cidr(address)
    internet_message = (
        MSG_CIDR_INTERNET_ENABLED if internet_resource_enabled else MSG_CIDR_INTERNET_DISABLED
    )
    errors: list[str] = []
    if _overlaps(network, _ALL_IPV4):
        errors.append(internet_message)
    if _overlaps(network, _LOOPBACK_IPV4):
        errors.append(MSG_LOOPBACK)
    if _overlaps(network, _ALL_IPV6):
        errors.append(internet_message)
    if _overlaps(network, _LOOPBACK_IPV6):
        errors.append(MSG_LOOPBACK)
    if not errors and (reserved := reserved_network_containing(network)):
        errors.append(reserved_cidr_message(reserved))
    if errors:
        raise AddressError(errors)
    return str(network)


def normalize_address(
    resource_type: str, address: str | None, *, internet_resource_enabled: bool = False
) -> str | None:
    """Validate and normalise `address` for a resource of `resource_type`.

    Returns the value to store: the trimmed DNS pattern, the canonical IP, the CIDR with host bits
    cleared, or None for the Internet resource (whatever address was given).
    """
    if resource_type == "dns":
        return validate_dns_address(address)
    if resource_type == "ip":
        return validate_ip_address(address)
    if resource_type == "cidr":
        return validate_cidr_address(address, internet_resource_enabled=internet_resource_enabled)
    if resource_type == "internet":
        return None
    raise AddressError(MSG_TYPE_INVALID)


def normalize_ip_stack(
    resource_type: str, ip_stack: str | None, *, previous_type: str | None = None
) -> str | None:
    """The `ip_stack` to store: defaults to `dual` for DNS, NULL for every other type.

    A resource changing away from `dns` drops its stack; any other non-DNS resource given a stack
    is refused (the DB CHECK `resources_ip_stack_not_null` would refuse it anyway).
    """
    if isinstance(ip_stack, str):
        ip_stack = ip_stack.strip() or None
    if resource_type == "dns":
        if ip_stack is None:
            return DEFAULT_IP_STACK
        if ip_stack not in IP_STACKS:
            raise AddressError(MSG_IP_STACK)
        return ip_stack
    if ip_stack is None or previous_type == "dns":
        return None
    raise AddressError(MSG_IP_STACK)


# --- Traffic filters ----------------------------------------------------------------------------

FILTER_PROTOCOLS: Final = ("tcp", "udp", "icmp")
MIN_PORT: Final = 0
MAX_PORT: Final = 65535

_PORT_RANGE: Final = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", re.ASCII)
_PG_RANGE: Final = re.compile(r"([\[(])\s*(\d*)\s*,\s*(\d*)\s*([\])])", re.ASCII)


class FilterError(ValueError):
    """Invalid traffic filters; `errors` maps `"<index>.protocol"`/`"<index>.ports"` to messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors: dict[str, list[str]] = {key: list(msgs) for key, msgs in errors.items()}
        first_key = next(iter(self.errors))
        self.message: str = self.errors[first_key][0]
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items()))


def _check_bounds(lower: int, upper: int) -> tuple[int, int]:
    if not (MIN_PORT <= lower <= MAX_PORT and MIN_PORT <= upper <= MAX_PORT):
        raise ValueError(MSG_PORT_OUT_OF_RANGE)
    if lower > upper:
        raise ValueError(MSG_PORT_LOWER_HIGHER)
    return lower, upper


def parse_port_range(value: object) -> tuple[int, int]:
    """Parse one `ports` element into an inclusive `(lower, upper)` pair.

    Accepts `"443"`, `"100 - 200"`, `"8080-8090"`, an int, a `[lower, upper]` pair, and Postgres
    range literals such as `"[80,90)"`. Raises ValueError whose text is the user-facing message.
    """
    if isinstance(value, bool):
        raise ValueError(MSG_PORT_BAD_FORMAT)
    if isinstance(value, int):
        return _check_bounds(value, value)
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(MSG_PORT_BAD_FORMAT)
        return _check_bounds(value[0], value[1])
    if not isinstance(value, str):
        raise ValueError(MSG_PORT_BAD_FORMAT)
    text = value.strip()
    if text[:1] in ("[", "("):
        match = _PG_RANGE.fullmatch(text)
        if not match or not match[2] or not match[3]:
            raise ValueError(MSG_PORT_BAD_FORMAT)
        lower = int(match[2]) + (1 if match[1] == "(" else 0)
        upper = int(match[3]) - (1 if match[4] == ")" else 0)
        return _check_bounds(lower, upper)
    match = _PORT_RANGE.fullmatch(text)
    if not match:
        raise ValueError(MSG_PORT_BAD_FORMAT)
    lower = int(match[1])
    upper = int(match[2]) if match[2] is not None else lower
    return _check_bounds(lower, upper)


def format_port_range(lower: int, upper: int) -> str:
    """The stored form: `"443"` for a single port, `"100 - 200"` for a range."""
    return str(lower) if lower == upper else f"{lower} - {upper}"


def normalize_ports(ports: object) -> list[str]:
    """Normalise a `ports` value (a list, or a comma-separated string from a form)."""
    if ports is None:
        return []
    if isinstance(ports, str):
        items: Iterable[object] = [p for p in ports.split(",") if p.strip()]
    elif isinstance(ports, list | tuple):
        items = ports
    else:
        raise ValueError(MSG_PORT_BAD_FORMAT)
    normalised: list[str] = []
    for item in items:
        text = format_port_range(*parse_port_range(item))
        if text not in normalised:
            normalised.append(text)
    return normalised


def normalize_filters(filters: object) -> list[dict[str, object]]:
    """Validate and normalise resource `filters` to `[{"protocol": ..., "ports": [...]}]`.

    An empty list allows all traffic; an entry without ports allows the whole protocol; ICMP never
    has ports. Raises FilterError keyed by entry index and field.
    """
    if filters is None:
        return []
    if not isinstance(filters, list | tuple):
        raise FilterError({"filters": [MSG_TYPE_INVALID]})
    errors: dict[str, list[str]] = {}
    result: list[dict[str, object]] = []
    for index, entry in enumerate(filters):
        if not isinstance(entry, Mapping):
            errors[str(index)] = [MSG_TYPE_INVALID]
            continue
        protocol = entry.get("protocol")
        if isinstance(protocol, str):
            protocol = protocol.strip().lower()
        if not protocol:
            errors[f"{index}.protocol"] = [MSG_BLANK]
            continue
        if protocol not in FILTER_PROTOCOLS:
            errors[f"{index}.protocol"] = [MSG_FILTER_PROTOCOL_INVALID]
            continue
        ports: list[str] = []
        if protocol != "icmp":
            try:
                ports = normalize_ports(entry.get("ports"))
            except ValueError as exc:
                errors[f"{index}.ports"] = [str(exc)]
                continue
        result.append({"protocol": protocol, "ports": ports})
    if errors:
        raise FilterError(errors)
    return result
