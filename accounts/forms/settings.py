"""Forms of the account settings pages (portal.md §4.9, §4.11): the account name, the
notification switches and the DNS settings (search domain and upstream resolvers).

The DNS rules are the account config's own (accounts.validation), so the page reports exactly
what a save would refuse; the save goes through `account_update`, whose errors come back with
`add_service_errors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.http import QueryDict

from accounts import validation
from accounts.models import Account
from firezone.errors import ValidationFailed
from firezone.web.forms import REQUIRED, ServiceErrorsMixin, extend_unique


class AccountForm(ServiceErrorsMixin, forms.Form):
    """Edit Account: the name only (the slug is staff business, §4.9.2)."""

    name = forms.CharField(
        label="Name",
        error_messages=REQUIRED,
        widget=forms.TextInput(attrs={"placeholder": "Account Name", "autocomplete": "off"}),
    )

    def clean_name(self) -> str:
        try:
            return validation.clean_name(self.cleaned_data["name"])
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.errors["name"]) from None


def outdated_gateway_enabled(account: Account) -> bool:
    """The "Outdated Gateways" notification switch (on unless explicitly turned off)."""
    notifications = (account.config or {}).get("notifications") or {}
    setting = notifications.get("outdated_gateway") or {}
    return setting.get("enabled", True) is not False


class NotificationsForm(ServiceErrorsMixin, forms.Form):
    """Enable/Disable radios per notification; only "Outdated Gateways" has a UI (§4.9.3)."""

    # Every `config.notifications...` error concerns the one switch the page has.
    def service_error_field(self, key: str) -> str:
        return "outdated_gateway_enabled"

    outdated_gateway_enabled = forms.TypedChoiceField(
        choices=[("true", "Enable"), ("false", "Disable")],
        coerce=lambda value: value == "true",
        error_messages=REQUIRED,
    )

    def config(self) -> dict[str, Any]:
        enabled = self.cleaned_data["outdated_gateway_enabled"]
        return {"notifications": {"outdated_gateway": {"enabled": enabled}}}


# --- DNS ---------------------------------------------------------------------------------------

PREFIX = "account[config]"
SEARCH_DOMAIN = f"{PREFIX}[search_domain]"
_RESOLVER_KEY = re.compile(
    r"account\[config\]\[clients_upstream_dns\]\[(\d{1,3})\]\[(protocol|address)\]"
)
PROTOCOLS: list[tuple[str, str, bool]] = [
    # (value, label, offered): only plain IP resolvers are supported for now (§4.11).
    ("ip_port", "IP", True),
    ("dns_over_tls", "DNS over TLS", False),
    ("dns_over_http", "DNS over HTTPS", False),
]
DEFAULT_PROTOCOL = "ip_port"
MAX_RESOLVERS = 100


@dataclass
class Resolver:
    protocol: str = DEFAULT_PROTOCOL
    address: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)


class DnsSettingsForm(ServiceErrorsMixin):
    """The search domain and an ordered list of resolver rows, read from the posted
    `account[config][...]` names (rows in index order). Not a Django form: the rows are a
    variable list that the page adds to and removes from."""

    NOT_UNIQUE: ClassVar[str] = validation.MSG_DNS_NOT_UNIQUE

    def __init__(self, data: QueryDict | None = None, *, account: Account | None = None) -> None:
        self.bound = data is not None
        self.search_domain_errors: list[str] = []
        self.resolvers_errors: list[str] = []
        self.other_errors: list[str] = []
        if data is None:
            config = (account.config if account else None) or {}
            self.search_domain = config.get("search_domain") or ""
            self.resolvers = [
                Resolver(str(e.get("protocol") or DEFAULT_PROTOCOL), str(e.get("address") or ""))
                for e in config.get("clients_upstream_dns") or []
                if isinstance(e, Mapping)
            ]
        else:
            self.search_domain = data.get(SEARCH_DOMAIN, "")
            self.resolvers = _posted_resolvers(data)

    # --- rows -----------------------------------------------------------------------------------

    def add_resolver(self) -> None:
        if len(self.resolvers) < MAX_RESOLVERS:
            self.resolvers.append(Resolver())

    def remove_resolver(self, index: Any) -> None:
        try:
            position = int(index)
        except (TypeError, ValueError):
            return
        if 0 <= position < len(self.resolvers):
            del self.resolvers[position]

    # --- validation -----------------------------------------------------------------------------

    @property
    def has_errors(self) -> bool:
        return bool(
            self.search_domain_errors
            or self.resolvers_errors
            or self.other_errors
            or any(r.errors for r in self.resolvers)
        )

    def config(self) -> dict[str, Any]:
        """The `config` update a save sends (the service trims and normalises)."""
        return {
            "search_domain": self.search_domain,
            "clients_upstream_dns": [
                {"protocol": r.protocol, "address": r.address} for r in self.resolvers
            ],
        }

    def is_valid(self) -> bool:
        """Check with the account config rules (the same the save applies)."""
        try:
            validation.clean_config_update(self.config())
        except ValidationFailed as exc:
            self.add_service_errors({f"config.{k}": v for k, v in exc.errors.items()})
        return not self.has_errors

    # --- service errors (ServiceErrorsMixin hooks) ------------------------------------------

    def service_error_field(self, key: str) -> str:
        """`account_update` errors (`config.search_domain`, `config.clients_upstream_dns`,
        `config.clients_upstream_dns.<i>[.<field>]`) name the input they concern: "search_domain",
        "resolvers", "<i>.<field>" or "other"."""
        path = key.removeprefix("config.").split(".")
        if path == ["search_domain"]:
            return "search_domain"
        if path == ["clients_upstream_dns"]:
            return "resolvers"
        row = path[1] if path[0] == "clients_upstream_dns" and len(path) in (2, 3) else ""
        if row.isdigit() and int(row) < len(self.resolvers):
            return f"{row}.{path[2] if len(path) == 3 else 'address'}"
        return "other"

    def put_service_error(self, field: str | None, message: str) -> None:
        if field == "search_domain":
            target = self.search_domain_errors
        elif field == "resolvers":
            target = self.resolvers_errors
        elif field and field[0].isdigit():
            index, _, name = field.partition(".")
            target = self.resolvers[int(index)].errors.setdefault(name, [])
        else:
            target = self.other_errors
        extend_unique(target, message)


def _posted_resolvers(data: QueryDict) -> list[Resolver]:
    rows: dict[int, Resolver] = {}
    for key in data:
        match = _RESOLVER_KEY.fullmatch(key)
        if match is None:
            continue
        row = rows.setdefault(int(match[1]), Resolver(protocol=""))
        setattr(row, match[2], data.get(key, ""))
    return [rows[i] for i in sorted(rows)][:MAX_RESOLVERS]
