"""The resource form of the New / Edit Resource pages (portal.md §4.3.2, §4.3.4).

The form only reads the posted fields (names as in the original: `resource[address]`,
`resource[filters][tcp][ports]`, `resource[connections][]`...) and turns them into the arguments
of `resource_create` / `resource_update`; every rule (address per type, ports, sites, lengths)
is the services' (resources/addresses.py), whose `ValidationFailed` errors are put back on the
matching inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from django import forms

from firezone.web.forms import ServiceErrorsMixin
from gateways.models import Site
from resources.models import Resource

PROTOCOLS: Final = ("tcp", "udp", "icmp")

TYPE_CHOICES: Final = [
    ("dns", "DNS", "Manage access to an application or service by DNS address."),
    ("ip", "IP", "Manage access to a specific host by IP address."),
    ("cidr", "CIDR", "Manage access to a network, VPC or subnet by CIDR address."),
]
IP_STACK_CHOICES: Final = [
    ("dual", "Dual-stack: A and AAAA records"),
    ("ipv4_only", "IPv4: A records only"),
    ("ipv6_only", "IPv6: AAAA records only"),
]
ADDRESS_PLACEHOLDERS: Final = {"dns": "gitlab.company.com", "cidr": "10.0.0.0/24", "ip": "10.3.2.1"}
NO_TYPE_PLACEHOLDER: Final = "First select a type above"
# Known domains whose stub-resolver records should be limited (the "Recommended" badge).
RECOMMENDED_IP_STACKS: Final = (("mongodb.net", "ipv4_only"),)


def recommended_ip_stack(address: str | None) -> str | None:
    address = (address or "").strip().lower().rstrip(".")
    for suffix, stack in RECOMMENDED_IP_STACKS:
        if address.endswith(suffix):
            return stack
    return None


class AnySiteField(forms.MultipleChoiceField):
    """The sites offered, as choices; a site that is gone / not offered is the service's error,
    not Django's."""

    def valid_value(self, value: Any) -> bool:
        return True


class ResourceForm(ServiceErrorsMixin, forms.Form):
    type = forms.CharField(required=False)
    address = forms.CharField(required=False)
    address_description = forms.CharField(required=False)
    name = forms.CharField(required=False)
    ip_stack = forms.CharField(required=False)
    tcp_enabled = forms.BooleanField(required=False)
    tcp_ports = forms.CharField(required=False)
    udp_enabled = forms.BooleanField(required=False)
    udp_ports = forms.CharField(required=False)
    icmp_enabled = forms.BooleanField(required=False)
    connections = AnySiteField(required=False)

    # Form field -> HTML input name (what the page posts).
    HTML_NAMES: Final[Mapping[str, str]] = {
        "type": "resource[type]",
        "address": "resource[address]",
        "address_description": "resource[address_description]",
        "name": "resource[name]",
        "ip_stack": "resource[ip_stack]",
        "tcp_enabled": "resource[filters][tcp][enabled]",
        "tcp_ports": "resource[filters][tcp][ports]",
        "udp_enabled": "resource[filters][udp][enabled]",
        "udp_ports": "resource[filters][udp][ports]",
        "icmp_enabled": "resource[filters][icmp][enabled]",
        "connections": "resource[connections][]",
    }

    def __init__(self, *args: Any, sites: Sequence[Site] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sites = list(sites)
        connections = self.fields["connections"]
        assert isinstance(connections, AnySiteField)
        connections.choices = [(str(s.pk), s.name) for s in self.sites]

    def add_prefix(self, field_name: str) -> str:
        return self.HTML_NAMES.get(field_name, field_name)

    @classmethod
    def initial_for(cls, resource: Resource) -> dict[str, Any]:
        """The edit page's values: the resource's fields, filters and connected sites."""
        initial: dict[str, Any] = {
            "type": resource.type,
            "address": resource.address or "",
            "address_description": resource.address_description or "",
            "name": resource.name,
            "ip_stack": resource.ip_stack or "dual",
            "connections": [str(c.gateway_group_id) for c in resource.connections.all()],
        }
        for entry in resource.filters or []:
            protocol = entry.get("protocol")
            if protocol in PROTOCOLS:
                initial[f"{protocol}_enabled"] = True
                if protocol != "icmp":
                    initial[f"{protocol}_ports"] = ", ".join(entry.get("ports") or [])
        return initial

    # --- values shown by the template (bound or initial) --------------------------------------

    def value(self, name: str) -> Any:
        return self[name].value()

    @property
    def selected_type(self) -> str:
        value = self.value("type") or ""
        return value if value in ADDRESS_PLACEHOLDERS else ""

    @property
    def address_placeholder(self) -> str:
        return ADDRESS_PLACEHOLDERS.get(self.selected_type, NO_TYPE_PLACEHOLDER)

    def filter_enabled(self, protocol: str) -> bool:
        return bool(self[f"{protocol}_enabled"].value())

    @property
    def tcp_checked(self) -> bool:
        return self.filter_enabled("tcp")

    @property
    def udp_checked(self) -> bool:
        return self.filter_enabled("udp")

    @property
    def icmp_checked(self) -> bool:
        return self.filter_enabled("icmp")

    @property
    def selected_ip_stack(self) -> str:
        value = self.value("ip_stack") or "dual"
        return value if value in dict(IP_STACK_CHOICES) else "dual"

    @property
    def selected_sites(self) -> set[str]:
        return {str(v) for v in (self.value("connections") or [])}

    @property
    def recommended_ip_stack(self) -> str | None:
        return recommended_ip_stack(self.value("address"))

    def errors_for(self, *names: str) -> list[str]:
        found: list[str] = []
        for name in names:
            found.extend(str(error) for error in self.errors.get(name, []))
        return found

    # --- service arguments --------------------------------------------------------------------

    def filters(self) -> list[dict[str, Any]]:
        """The checked protocols in TCP, UDP, ICMP order; ports as typed (the service parses)."""
        data = self.cleaned_data
        filters: list[dict[str, Any]] = []
        for protocol in PROTOCOLS:
            if not data.get(f"{protocol}_enabled"):
                continue
            ports = "" if protocol == "icmp" else (data.get(f"{protocol}_ports") or "")
            filters.append({"protocol": protocol, "ports": ports})
        return filters

    def service_kwargs(
        self, *, traffic_filters: bool, connections: Iterable[Any] | None
    ) -> dict[str, Any]:
        """Arguments for `resource_create`/`resource_update`. Without the `traffic_filters`
        feature the filters are left out (submitted ones are discarded); `connections=None`
        leaves the sites out too (the page is bound to a site)."""
        data = self.cleaned_data
        resource_type = (data.get("type") or "").strip()
        kwargs: dict[str, Any] = {
            "type": resource_type,
            "name": data.get("name") or "",
            "address": data.get("address") or "",
            "address_description": data.get("address_description") or None,
            # Only DNS resources have an IP stack; other types must not send one.
            "ip_stack": (data.get("ip_stack") or "dual") if resource_type == "dns" else None,
        }
        if traffic_filters:
            kwargs["filters"] = self.filters()
        if connections is not None:
            kwargs["connections"] = list(connections)
        return kwargs

    # --- service errors (ServiceErrorsMixin hooks) ------------------------------------------

    def service_error_field(self, key: str) -> str | None:
        field = key
        if key.startswith("filters."):
            # "filters.<index>.ports" -> the ports input of the index-th checked protocol.
            checked = [p for p in PROTOCOLS if self.cleaned_data.get(f"{p}_enabled")]
            parts = key.split(".")
            try:
                protocol = checked[int(parts[1])]
            except (ValueError, IndexError):
                protocol = ""
            field = f"{protocol}_ports" if protocol in ("tcp", "udp") else "filters"
        return field if field in self.fields else None

    def service_error_text(self, key: str, message: str) -> str:
        return message  # the resource page's form-level errors read on their own
