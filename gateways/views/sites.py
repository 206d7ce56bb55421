"""Admin pages: sites and gateways (portal.md §4.1, §4.2).

Online status comes from gateway presence in Redis (one call per page, gateways.selectors), never
from the database. Live updates (§7): the Sites list and its Internet banner follow the account's
gateway presence, a site's pages and a gateway's page follow the site's presence and re-read
their region in place; the Deploy page only watches for a join carrying its own token.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.models import Account
from firezone.web import audit
from firezone.web.edit import edit_page
from firezone.web.events import Handler, page_events
from firezone.web.pages import (
    account_url,
    redirect_info,
    render_secret,
)
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required, not_found
from firezone.web.tables import Column, LiveTable
from gateways import presence
from gateways.forms import SiteForm
from gateways.models import Gateway, Site
from gateways.selectors.gateways import (
    gateway_get,
    gateway_latest_version,
    gateway_list,
    gateway_outdated,
    gateways_online,
)
from gateways.selectors.sites import internet_site_find, site_get, site_list_with_peeks
from gateways.services.gateways import gateway_delete
from gateways.services.sites import (
    site_create,
    site_delete,
    site_token_create,
    site_tokens_delete_all,
    site_update,
)
from resources.policy_forms import country_name
from resources.selectors.policies import policy_list
from resources.selectors.resources import (
    internet_resource_get,
    resource_list,
)
from resources.tables import peek_groups, resource_policies_table, resources_table

HELP_GATEWAYS = (
    "Deploy gateways to terminate connections to your site's resources. All gateways deployed "
    "within a site must be able to reach all its resources."
)
HELP_INTERNET_GATEWAYS = (
    "Gateways deployed to the Internet Site are used to tunnel all traffic that doesn't match "
    "any specific Resource."
)
HELP_INTERNET_GATEWAYS_LIST = (
    "Gateways deployed to the Internet Site will be used for full-route tunneling of traffic "
    "that doesn't match a more specific Resource."
)
MSG_GATEWAY_DELETED = "Gateway was deleted."
PEEK_LIMIT = 5  # resources / online gateways shown per row of the Sites table
MSG_INTERNET_EMPTY = "No gateways to display. Deploy a Gateway to the Internet Site."

SITES_TABLE = LiveTable(
    id="groups",
    columns=[Column("site", order="name"), Column("resources"), Column("online gateways")],
    row_template="gateways/sites/_row.html",
    orders={"inserted_at": "inserted_at", "name": "name"},
    default_order=("inserted_at", "asc"),
    empty_template="gateways/sites/_empty.html",
)

# Site page: only the online gateways, oldest "last seen" first, nothing sortable.
ONLINE_GATEWAYS_TABLE = LiveTable(
    id="gateways",
    columns=[Column("instance"), Column("remote ip"), Column("version"), Column("status")],
    row_template="gateways/gateways/_row.html",
    orders={"last_seen_at": "last_seen_at"},
    default_order=("last_seen_at", "asc"),
    empty_message="No gateways to display. Deploy a gateway to connect resources.",
)

# Site gateways page: every gateway of the site.
ALL_GATEWAYS_TABLE = LiveTable(
    id="gateways",
    columns=[
        Column("instance", order="name"),
        Column("remote ip"),
        Column("version"),
        Column("status"),
    ],
    row_template="gateways/gateways/_row.html",
    orders={"last_seen_at": "last_seen_at", "name": "name"},
    default_order=("last_seen_at", "asc"),
    empty_message="No gateways to display. Deploy a Gateway to connect Resources.",
)

SITE_RESOURCES_TABLE = resources_table(
    row_template="gateways/sites/_resource_row.html",
    sites=False,
    empty_message="No resources to display.",
)


INTERNET_POLICIES_TABLE = resource_policies_table(
    row_template="gateways/sites/_policy_row.html",
    empty_template="gateways/sites/_internet_policies_empty.html",
)


# --- helpers --------------------------------------------------------------------------------


def _site_url(account: Account, site: Site | Any, name: str = "site") -> str:
    site_id = site.pk if isinstance(site, Site) else site
    return account_url(account, name, id=site_id)


def _mark_gateways(rows: list[Gateway], online: frozenset[str]) -> None:
    """Per-row display facts: presence and whether a newer gateway version exists."""
    latest = gateway_latest_version()
    for row in rows:
        row.online = str(row.pk) in online
        row.outdated = gateway_outdated(row.last_seen_version, latest)


def _site_breadcrumbs(account: Account, site: Site, *tail: tuple[str, str | None]) -> list:
    return [("Sites", account_url(account, "sites")), (site.name, _site_url(account, site)), *tail]


# --- sites list -------------------------------------------------------------------------------


@admin_required
def sites_list(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    internet = internet_site_find(subject)
    # One Redis call: the account's online gateways and the Internet site's.
    online = gateways_online(subject, account=True, sites=[internet] if internet else [])
    topic = presence.account_gateways_topic(account.pk)
    table = dataclasses.replace(SITES_TABLE, live_topics=[topic])
    sites = site_list_with_peeks(
        subject, online_gateway_ids=online.account, resources_limit=PEEK_LIMIT
    )
    page = table.page(request, sites)
    for row in page.rows:
        row.resources_more = row.resources_count - len(row.resource_peek)
        row.gateways_peek = row.online_gateways[:PEEK_LIMIT]
        row.gateways_more = len(row.online_gateways) - len(row.gateways_peek)
    return render(
        request,
        "gateways/sites/index.html",
        {
            "page_title": "Sites",
            "breadcrumbs": [("Sites", None)],
            "page": page,
            "internet": internet,
            "internet_online": bool(internet and online.of_site(internet)),
            "presence_topic": topic,
        },
    )


# --- new / edit -------------------------------------------------------------------------------


@admin_required
def site_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: SiteForm) -> str:
        name = form.cleaned_data["name"] or None  # blank: a generated name
        site = site_create(subject=request.subject, name=name)
        return _site_url(account, site)

    return edit_page(
        request,
        SiteForm(request.POST or None),
        template="gateways/sites/new.html",
        context={
            "page_title": "New Site",
            "breadcrumbs": [("Sites", account_url(account, "sites")), ("Add", None)],
        },
        save=save,
    )


@admin_required
def site_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    site = site_get(request.subject, site_id=id)
    if site.is_internet_site:
        return not_found(request)

    def save(form: SiteForm) -> str:
        site_update(
            subject=request.subject,
            site=site,
            name=form.cleaned_data["name"],
        )
        return _site_url(account, site)

    return edit_page(
        request,
        SiteForm(
            request.POST or None, initial={"name": site.name}, placeholder="Name of this Site"
        ),
        template="gateways/sites/edit.html",
        context={
            "page_title": f"Edit {site.name}",
            "breadcrumbs": _site_breadcrumbs(account, site, ("Edit", None)),
            "site": site,
        },
        save=save,
    )


# --- site detail ------------------------------------------------------------------------------


def _site_event(request: PortalRequest, account: Account, site: Site) -> HttpResponse:
    subject = request.subject
    here = _site_url(account, site)

    def revoke_all() -> HttpResponse:
        count = site_tokens_delete_all(subject=subject, site=site)
        return redirect_info(request, here, f"{count} token(s) were revoked.")

    def delete() -> HttpResponse:
        site_delete(subject=subject, site=site)
        return HttpResponseRedirect(account_url(account, "sites"))

    handlers: dict[str, Handler] = {"revoke_all": revoke_all}
    if not site.is_internet_site:
        handlers["delete"] = delete
    return page_events(request, here=here, handlers=handlers, strict=True)


@admin_required
def site_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    site = site_get(subject, site_id=id)
    if request.method == "POST":
        return _site_event(request, account, site)

    online = gateways_online(subject, sites=[site]).of_site(site)
    gateways_table = ONLINE_GATEWAYS_TABLE
    if site.is_internet_site:
        gateways_table = dataclasses.replace(gateways_table, empty_message=MSG_INTERNET_EMPTY)
    gateways_page = gateways_table.page(request, gateway_list(subject, site=site, ids=online))
    _mark_gateways(gateways_page.rows, online)
    context: dict[str, Any] = {
        "page_title": f"Site {site.name}",
        "breadcrumbs": [("Sites", account_url(account, "sites")), (site.name, None)],
        "site": site,
        "gateways_page": gateways_page,
        "history": audit.history(account, "gateway_groups", site.pk),
        "presence_topic": presence.group_gateways_topic(site.pk),
        "site_url": _site_url(account, site),
        "gateways_help": HELP_INTERNET_GATEWAYS if site.is_internet_site else HELP_GATEWAYS,
    }
    if site.is_internet_site:
        resource = internet_resource_get(subject)  # NotFound → 404 (§4.1.4)
        add_policy_url = account_url(
            account, "policy_new", query={"resource_id": resource.pk, "site_id": site.pk}
        )
        context["policies_page"] = dataclasses.replace(
            INTERNET_POLICIES_TABLE, context={"add_policy_url": add_policy_url}
        ).page(request, policy_list(subject, resource_id=resource.pk))
        context["add_policy_url"] = add_policy_url
    else:
        resources_page = dataclasses.replace(SITE_RESOURCES_TABLE, context={"site": site}).page(
            request, resource_list(subject, site_id=site.pk, exclude_internet=True)
        )
        peek_groups(subject, resources_page.rows)
        context["resources_page"] = resources_page
    return render(request, "gateways/sites/show.html", context)


# --- deploy a gateway -------------------------------------------------------------------------

METHODS = (
    ("systemd-instructions", "systemd"),
    ("docker-instructions", "Docker"),
    ("terraform-instructions", "Terraform"),
    ("binary-instructions", "Custom"),
)
SYSTEMD_INSTALL = (
    "bash <(curl -fsSL "
    "https://raw.githubusercontent.com/firezone/firezone/main/scripts/gateway-systemd-install.sh)"
)
DOCKER_OPTIONS = (
    "-d",
    "--restart=unless-stopped",
    "--pull=always",
    '--health-cmd="ip link | grep tun-firezone"',
    "--name=firezone-gateway",
    "--cap-add=NET_ADMIN",
    "--sysctl net.ipv4.ip_forward=1",
    "--sysctl net.ipv4.conf.all.src_valid_mark=1",
    "--sysctl net.ipv6.conf.all.disable_ipv6=0",
    "--sysctl net.ipv6.conf.all.forwarding=1",
    "--sysctl net.ipv6.conf.default.forwarding=1",
    '--device="/dev/net/tun:/dev/net/tun"',
)
SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.src_valid_mark=1",
    "net.ipv6.conf.all.disable_ipv6=0",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv6.conf.default.forwarding=1",
)


def _iptables_rules() -> str:
    rules = []
    for tool in ("iptables", "ip6tables"):
        for rule in (
            "FORWARD -i tun-firezone -j ACCEPT",
            "FORWARD -o tun-firezone -j ACCEPT",
            "-t nat POSTROUTING -o e+ -j MASQUERADE",
            "-t nat POSTROUTING -o w+ -j MASQUERADE",
        ):
            table, chain = ("-t nat ", rule[7:]) if rule.startswith("-t nat ") else ("", rule)
            rules.append(
                f"sudo {tool} {table}-C {chain} > /dev/null 2>&1 || sudo {tool} {table}-A {chain}"
            )
    return "\n".join(rules)


def deploy_env(token: str, firezone_id: str) -> list[tuple[str, str]]:
    """FIREZONE_ID, FIREZONE_TOKEN and, only when overridden, FIREZONE_API_URL."""
    env = [("FIREZONE_ID", firezone_id), ("FIREZONE_TOKEN", token)]
    if settings.API_URL_OVERRIDE:
        env.append(("FIREZONE_API_URL", settings.API_URL_OVERRIDE))
    return env


def deploy_instructions(token: str, firezone_id: str) -> dict[str, str]:
    """The commands of each deployment tab (§4.1.5)."""
    env = deploy_env(token, firezone_id)
    systemd = " \\\n".join([*(f'{k}="{v}"' for k, v in env), SYSTEMD_INSTALL])
    docker_lines = [
        "docker run",
        *DOCKER_OPTIONS,
        *(f'--env {k}="{v}"' for k, v in env),
        "--env FIREZONE_NAME=$(hostname)",
        "--env RUST_LOG=info",
        f"{settings.DOCKER_REGISTRY}/gateway:1",
    ]
    return {
        "systemd": systemd,
        "docker": " \\\n  ".join(docker_lines),
        "binary_env": "\n".join(["RUST_LOG=info", *(f"{k}={v}" for k, v in env)]),
        "sysctl": "\n".join(f"sudo sysctl -w {s}" for s in SYSCTLS),
        "iptables": _iptables_rules(),
        "binary_run": "sudo ./firezone-gateway-<version>-<architecture>",
    }


@admin_required
def site_new_token(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    site = site_get(subject, site_id=id)
    methods = dict(METHODS)
    method = request.GET.get("method", "")
    if method not in methods:
        method = METHODS[0][0]
    token_id, encoded = "", ""
    # A new token per visit; in-place (htmx) refreshes must not mint another one.
    if not request.htmx:
        issued = site_token_create(subject=subject, site=site)
        token_id, encoded = str(issued.token.pk), issued.encoded
    return render_secret(
        request,
        "gateways/sites/new_token.html",
        {
            "page_title": "New Site Gateway",
            "breadcrumbs": _site_breadcrumbs(account, site, ("Deploy", None)),
            "site": site,
            "site_url": _site_url(account, site),
            "methods": METHODS,
            "method": method,
            "token": encoded,
            "token_id": token_id,
            "commands": deploy_instructions(encoded, str(uuid.uuid4())),
            "presence_topic": presence.group_gateways_topic(site.pk),
        },
    )


# --- site gateways & gateway detail -----------------------------------------------------------


@admin_required
def site_gateways(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    site = site_get(subject, site_id=id)
    online = gateways_online(subject, sites=[site]).of_site(site)
    table = ALL_GATEWAYS_TABLE
    if site.is_internet_site:
        table = dataclasses.replace(table, empty_message=MSG_INTERNET_EMPTY)
    topic = presence.group_gateways_topic(site.pk)
    table = dataclasses.replace(table, live_topics=[topic])
    page = table.page(request, gateway_list(subject, site=site))
    _mark_gateways(page.rows, online)
    return render(
        request,
        "gateways/sites/gateways.html",
        {
            "page_title": "Site Gateways",
            "breadcrumbs": _site_breadcrumbs(account, site, ("Gateways", None)),
            "site": site,
            "page": page,
            "help": HELP_INTERNET_GATEWAYS_LIST if site.is_internet_site else HELP_GATEWAYS,
        },
    )


def _location(gateway: Gateway) -> dict[str, Any]:
    """ "City, Country" and a map link for the last seen remote IP, when known."""
    region = gateway.last_seen_remote_ip_location_region
    parts = [gateway.last_seen_remote_ip_location_city, country_name(region) if region else None]
    lat = gateway.last_seen_remote_ip_location_lat
    lon = gateway.last_seen_remote_ip_location_lon
    return {
        "place": ", ".join(p for p in parts if p),
        "map_url": (
            f"https://www.google.com/maps/search/?api=1&query={lat},{lon}"
            if lat is not None and lon is not None
            else ""
        ),
    }


def _gateway_event(request: PortalRequest, account: Account, gateway: Gateway) -> HttpResponse:
    def delete() -> HttpResponse:
        gateway_delete(subject=request.subject, gateway=gateway)
        return redirect_info(request, _site_url(account, gateway.group), MSG_GATEWAY_DELETED)

    here = account_url(account, "gateway", id=gateway.pk)
    return page_events(request, here=here, handlers={"delete": delete}, strict=True)


@admin_required
def gateway_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    gateway = gateway_get(subject, gateway_id=id)
    site = gateway.group
    if request.method == "POST":
        return _gateway_event(request, account, gateway)
    online = str(gateway.pk) in gateways_online(subject, sites=[site]).of_site(site)
    return render(
        request,
        "gateways/gateways/show.html",
        {
            "page_title": f"Gateway {gateway.name}",
            "breadcrumbs": _site_breadcrumbs(
                account,
                site,
                ("Gateways", _site_url(account, site, "site_gateways")),
                (gateway.name, None),
            ),
            "gateway": gateway,
            "site": site,
            "site_url": _site_url(account, site),
            "online": online,
            "outdated": gateway_outdated(gateway.last_seen_version),
            "location": _location(gateway),
            "presence_topic": presence.group_gateways_topic(site.pk),
        },
    )
