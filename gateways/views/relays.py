"""Admin pages: self-hosted relays (portal.md §4.8), all behind the `self_hosted_relays` feature
(404 without it): the relay groups list (global Firezone-owned groups included, read-only),
new/edit group, the group page with its relays, "Deploy Relay" and the relay page.

Online status comes from relay presence (Redis): `group_relays:<group>` (keyed by relay id,
metas carry the `token_id` the relay connected with), `account_relays:<account>` and
`relays:<relay>`. Tables follow those topics and reload themselves (§7).

Group page events (POST `action`): revoke_all, delete. Relay page event: delete. Global groups
and relays accept no event (the services refuse them; their buttons are not shown, §9 item 19).
The deploy page creates a relay token on each visit (not on the live refreshes of the page).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.models import Account
from firezone.errors import NotFound, Refused, Unauthorized
from firezone.web.edit import edit_page, refusal_message
from firezone.web.events import page_events
from firezone.web.pages import (
    account_url,
    feature_required,
    redirect_error,
    redirect_info,
    render_secret,
)
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import Column, LiveTable
from gateways.models import Relay, RelayGroup
from gateways.presence import (
    account_relays_topic,
    group_relays_topic,
    list_presences_many_sync,
    relay_topic,
)
from gateways.relay_forms import RelayGroupForm
from gateways.selectors.relays import relay_get, relay_group_get, relay_group_list, relay_list
from gateways.services.relays import (
    relay_delete,
    relay_group_create,
    relay_group_delete,
    relay_group_token_create,
    relay_group_tokens_delete,
    relay_group_update,
)

logger = logging.getLogger(__name__)

FEATURE = "self_hosted_relays"
TROUBLESHOOTING_URL = (
    "https://www.firezone.dev/kb/administer/troubleshooting#relay-not-connecting?utm_source=product"
)
RUST_LOG = (
    "firezone_relay=info,firezone_tunnel=info,connlib_shared=info,tunnel_state=info,"
    "phoenix_channel=info,snownet=info,str0m=info,warn"
)
MUST_SET = "YOU_MUST_SET_THIS_VALUE"


def _list_url(account: Account) -> str:
    return account_url(account, "relay_groups")


def _group_url(account: Account, group: RelayGroup | Any) -> str:
    return account_url(account, "relay_group", id=getattr(group, "pk", group))


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Relay Instance Groups", _list_url(account) if rest else None), *rest]


def _presences(topics: Iterable[str]) -> dict[str, set[str]]:
    """Relay ids present on each topic, in one Redis round trip (an outage: all offline)."""
    topics = list(topics)
    if not topics:
        return {}
    try:
        found = list_presences_many_sync(topics)
    except Exception:
        logger.warning("relay presence unavailable", exc_info=True)
        return {topic: set() for topic in topics}
    return {topic: set(found.get(topic) or ()) for topic in topics}


def _decorate(relays: Iterable[Relay], online: set[str]) -> list[Relay]:
    relays = list(relays)
    for relay in relays:
        relay.online = str(relay.pk) in online
        relay.display_name = relay.name or relay.ipv4 or relay.ipv6
    return relays


def relay_label(relay: Relay) -> str:
    """A relay's title: its name, else its address."""
    return relay.name or str(relay.ipv4 or relay.ipv6 or relay.pk)


# --- list ----------------------------------------------------------------------------------------


def _groups_table(account: Account) -> LiveTable:
    return LiveTable(
        id="groups",
        columns=[Column("instance"), Column("type"), Column("status")],
        row_template="gateways/relays/_group_rows.html",
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "asc"),
        empty_template="gateways/relays/_groups_empty.html",
        live_topics=[account_relays_topic(account.pk)],
        live_mode="reload",
    )


@admin_required
@feature_required(FEATURE)
def relay_groups_list(request: PortalRequest, account: Account) -> HttpResponse:
    relays = Relay.objects.order_by("inserted_at", "id")
    groups = relay_group_list(request.subject).prefetch_related(
        Prefetch("relays", queryset=relays, to_attr="relay_rows")
    )
    table = _groups_table(account)
    page = table.page(request, groups)
    topics = {row.pk: group_relays_topic(row.pk) for row in page.rows}
    online = _presences(topics.values())
    for row in page.rows:
        row.relay_rows = _decorate(row.relay_rows, online.get(topics[row.pk], set()))
    # Global groups' relays are not on the account topic: follow their groups' topics too.
    table.live_topics = [
        account_relays_topic(account.pk),
        *(topics[row.pk] for row in page.rows if row.is_global),
    ]
    context = {
        "page_title": "Relays",
        "breadcrumbs": _crumbs(account),
        "page": page,
    }
    return render(request, "gateways/relays/list.html", context)


# --- new / edit ----------------------------------------------------------------------------------


@admin_required
@feature_required(FEATURE)
def relay_group_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: RelayGroupForm) -> str:
        group = relay_group_create(subject=request.subject, name=form.cleaned_data["name"])
        return _group_url(account, group)

    return edit_page(
        request,
        RelayGroupForm(request.POST or None),
        template="gateways/relays/new.html",
        context={"page_title": "New Relay Group", "breadcrumbs": _crumbs(account, ("Add", None))},
        save=save,
    )


def _account_group(request: PortalRequest, id: str) -> RelayGroup:
    """A self-hosted group of the account (global groups have no edit or deploy page)."""
    group = relay_group_get(request.subject, group_id=id)
    if group.is_global:
        raise NotFound()
    return group


@admin_required
@feature_required(FEATURE)
def relay_group_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    group = _account_group(request, id)

    def save(form: RelayGroupForm) -> str:
        relay_group_update(subject=request.subject, group=group, name=form.cleaned_data["name"])
        return _group_url(account, group)

    return edit_page(
        request,
        RelayGroupForm(request.POST or None, initial={"name": group.name}),
        template="gateways/relays/edit.html",
        context={
            "page_title": f"Edit {group.name}",
            "breadcrumbs": _crumbs(
                account, (group.name, _group_url(account, group)), ("Edit", None)
            ),
            "group": group,
        },
        save=save,
    )


# --- group page ----------------------------------------------------------------------------------


def _relays_table(group: RelayGroup) -> LiveTable:
    return LiveTable(
        id="relays",
        columns=[Column("instance"), Column("status")],
        row_template="gateways/relays/_relay_row.html",
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "asc"),
        empty_message="No relay instances to display",
        live_topics=[group_relays_topic(group.pk)],
        live_mode="reload",
    )


def _group_event(request: PortalRequest, account: Account, group: RelayGroup) -> HttpResponse:
    here = _group_url(account, group)

    def revoke_all() -> HttpResponse:
        count = relay_group_tokens_delete(subject=request.subject, group=group)
        return redirect_info(request, here, f"{count} token(s) were revoked.")

    def delete() -> HttpResponse:
        relay_group_delete(subject=request.subject, group=group)
        return HttpResponseRedirect(_list_url(account))

    return page_events(request, here=here, handlers={"revoke_all": revoke_all, "delete": delete})


@admin_required
@feature_required(FEATURE)
def relay_group_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    group = relay_group_get(request.subject, group_id=id)
    if request.method == "POST":
        return _group_event(request, account, group)
    page = _relays_table(group).page(request, relay_list(request.subject, group=group))
    topic = group_relays_topic(group.pk)
    online = _presences([topic]).get(topic, set()) if page.rows else set()
    _decorate(page.rows, online)
    context = {
        "page_title": f"Relay Group {group.name}",
        "breadcrumbs": _crumbs(account, (group.name, None)),
        "group": group,
        "relays": page,
    }
    return render(request, "gateways/relays/detail.html", context)


# --- deploy --------------------------------------------------------------------------------------


def _env(token: str) -> list[tuple[str, str]]:
    env = [
        ("FIREZONE_ID", str(uuid.uuid4())),
        ("FIREZONE_TOKEN", token),
        ("PUBLIC_IP4_ADDR", MUST_SET),
        ("PUBLIC_IP6_ADDR", MUST_SET),
    ]
    if settings.API_URL_OVERRIDE:
        env.append(("FIREZONE_API_URL", settings.API_URL_OVERRIDE))
    env += [("RUST_LOG", RUST_LOG), ("LOG_FORMAT", "google-cloud")]
    return env


def systemd_unit(env: list[tuple[str, str]]) -> str:
    """The `firezone-relay.service` unit: an unprivileged, sandboxed service whose privileged
    pre-start step (`+`) fetches the latest relay binary for the machine's architecture
    (`$$` is a literal `$` for the shell: systemd expands `$NAME` itself)."""
    environment = "\n".join(f'Environment="{key}={value}"' for key, value in env)
    return f"""[Unit]
Description=Firezone Relay
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=firezone
Group=firezone
SyslogIdentifier=firezone-relay
{environment}
ExecStartPre=+/bin/sh -c ' \\
  set -e; \\
  arch="$$(uname -m)"; \\
  url="$$(curl -fsSL https://api.github.com/repos/firezone/firezone/releases \\
    | grep -o "https://[^\\"]*/firezone-relay[^\\"]*_$$arch" | head -n 1)"; \\
  curl -fsSL "$$url" -o /usr/local/bin/firezone-relay; \\
  chmod 0755 /usr/local/bin/firezone-relay'
ExecStart=/usr/local/bin/firezone-relay
Restart=always
RestartSec=3
NoNewPrivileges=true
PrivateTmp=true
PrivateDevices=true
ProtectSystem=strict
ProtectHome=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
StateDirectory=firezone
LimitNOFILE=infinity

[Install]
WantedBy=multi-user.target
"""


def docker_command(env: list[tuple[str, str]]) -> str:
    options = [
        "docker run -d",
        "--restart=unless-stopped",
        "--pull=always",
        '--health-cmd="cat /proc/net/udp | grep D96"',
        "--name=firezone-relay",
        "--cap-add=NET_ADMIN",
        "--volume /var/lib/firezone",
        "--sysctl net.ipv4.ip_forward=1",
        "--sysctl net.ipv4.conf.all.src_valid_mark=1",
        "--sysctl net.ipv6.conf.all.disable_ipv6=0",
        "--sysctl net.ipv6.conf.all.forwarding=1",
        "--sysctl net.ipv6.conf.default.forwarding=1",
        '--device="/dev/net/tun:/dev/net/tun"',
        *(f'--env {key}="{value}"' for key, value in env),
        "--env FIREZONE_NAME=$(hostname)",
        f"{settings.DOCKER_REGISTRY}/relay:latest",
    ]
    return " \\\n  ".join(options)


@admin_required
@feature_required(FEATURE)
def relay_group_new_token(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    group = _account_group(request, id)
    if request.method != "GET":
        return HttpResponseRedirect(request.path)
    if request.htmx:
        # Nothing here is refreshed in place; above all, an htmx request must not mint a token.
        return HttpResponse(status=204)
    try:
        issued = relay_group_token_create(subject=request.subject, group=group)
    except (Refused, Unauthorized) as exc:
        return redirect_error(request, _group_url(account, group), refusal_message(exc))
    env = _env(issued.encoded)
    context = {
        "page_title": "New Relay",
        "breadcrumbs": _crumbs(account, (group.name, _group_url(account, group)), ("Deploy", None)),
        "group": group,
        "token_id": str(issued.token.pk),
        "presence_topic": group_relays_topic(group.pk),
        "systemd_unit": systemd_unit(env),
        "docker_command": docker_command(env),
        "troubleshooting_url": TROUBLESHOOTING_URL,
    }
    return render_secret(request, "gateways/relays/new_token.html", context)


# --- relay page ----------------------------------------------------------------------------------


def _relay_event(request: PortalRequest, account: Account, relay: Relay) -> HttpResponse:
    def delete() -> HttpResponse:
        relay_delete(subject=request.subject, relay=relay)
        return HttpResponseRedirect(_group_url(account, relay.group))

    here = account_url(account, "relay", id=relay.pk)
    return page_events(request, here=here, handlers={"delete": delete})


@admin_required
@feature_required(FEATURE)
def relay_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    relay = relay_get(request.subject, relay_id=id)
    group = relay.group
    if request.method == "POST":
        return _relay_event(request, account, relay)
    topic = relay_topic(relay.pk)
    _decorate([relay], _presences([topic]).get(topic, set()))
    label = relay_label(relay)
    context = {
        "page_title": f"Relay {label}",
        "breadcrumbs": _crumbs(account, (group.name, _group_url(account, group)), (label, None)),
        "relay": relay,
        "group": group,
        "label": label,
        "presence_topic": topic,
    }
    return render(request, "gateways/relays/relay.html", context)
