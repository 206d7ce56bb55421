"""Every portal form POSTed with hostile values (issue 17): the account's form pages (from the URL
conf: sites, gateways' sites, clients, relay groups, resources, policies, actors, service
accounts, groups and their members, account settings, notifications, DNS, API clients, identity
providers, sign-in and sign-up) are read with GET, their `<form method="post">` fields
collected, and each form is POSTed with Hypothesis-drawn values: the page's own values, NUL
bytes, 10 kB strings, unicode, huge numbers and another account's ids (its actors, groups,
resources, sites, providers and clients). Every answer is a 4xx, a re-rendered page (200) or a
redirect, never a 5xx, and a refused POST (anything but a redirect) wrote no change-log row; the
other account's rows never change.

Django's test client against the real database (PostgreSQL); `FUZZ_FORM_POSTS` (default 10)
posts per form.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from typing import Any

import hypothesis.strategies as st
import pytest
from django.test import Client

from accounts.models import Account
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    ProviderFactory,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from firezone.models import ChangeLog
from gateways.tests.factories import RelayGroupFactory
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)
from tests.hostile import HOSTILE_STRINGS, LONG, NUL, draw

pytestmark = pytest.mark.django_db

POSTS = int(os.environ.get("FUZZ_FORM_POSTS", "10"))
# Actions that end the session or start an external flow: not forms with input to refuse.
EDITING = ("/new", "/edit", "/edit_groups", "/edit_actors", "/new_identity", "/dns")
SKIP_ACTIONS = re.compile(r"/sign_out|/redirect$|/handle_callback|/billing")


class _Forms(HTMLParser):
    """The POST forms of a page: (action, {field: [values the page offers]})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str | None, dict[str, list[str]]]] = []
        self._fields: dict[str, list[str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._fields = {}
            self.forms.append((a.get("action"), self._fields))
        elif self._fields is None:
            return
        elif tag in ("input", "textarea", "button") and a.get("name"):
            self._fields.setdefault(a["name"] or "", []).append(a.get("value") or "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._fields.setdefault(self._select or "", [])
        elif tag == "option" and self._select:
            self._fields[self._select].append(a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None


def forms_of(html: str) -> list[tuple[str | None, dict[str, list[str]]]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def make_world() -> tuple[Acme, dict[str, Any], list[str]]:
    """Acme with one row of every kind its pages edit, and another account's ids."""
    acme = make_acme(userpass=True)
    account = acme.account
    account.features = {**account.features, "idp_sync": True, "rest_api": True}
    account.save()
    site = SiteFactory(account=account, name="S1")
    gateway = GatewayFactory(group=site)
    resource = ResourceFactory(account=account, type="dns", address="*.acme.test", ip_stack="dual")
    ConnectionFactory(resource=resource, gateway_group=site, account=account)
    group = GroupFactory(account=account, name="Eng")
    user = ActorFactory(account=account, name="Bob")
    MembershipFactory(group=group, actor=user, account=account)
    service = ActorFactory(account=account, service_account=True)
    api_client = ActorFactory(account=account, api_client=True)
    policy = PolicyFactory(account=account, actor_group=group, resource=resource)
    client = ClientFactory(account=account, actor=user)
    relay_group = RelayGroupFactory(account=account)
    oidc = ProviderFactory(account=account, oidc=True)
    rows = {
        "site": site, "gateway": gateway, "resource": resource, "group": group, "user": user,
        "service": service, "api_client": api_client, "policy": policy, "client": client,
        "relay_group": relay_group, "oidc": oidc,
    }  # fmt: skip
    other = AccountFactory(name="Other", slug="other")
    o_site = SiteFactory(account=other)
    o_resource = ResourceFactory(account=other, type="dns", address="o.test", ip_stack="dual")
    o_group = GroupFactory(account=other)
    o_actor = ActorFactory(account=other)
    o_provider = ProviderFactory(account=other)
    o_client = ClientFactory(account=other, actor=o_actor)
    o_policy = PolicyFactory(account=other, actor_group=o_group, resource=o_resource)
    foreign = [str(r.pk) for r in (o_site, o_resource, o_group, o_actor, o_provider, o_client,
                                    o_policy)]  # fmt: skip
    return acme, rows, foreign


def form_pages(acme: Acme, rows: dict[str, Any]) -> list[str]:
    """Every page of the account that shows a form (new, edit, settings, detail pages with
    actions), from the URL conf's names."""
    s = acme.account.slug
    r = {k: (str(v.pk) if v is not None else None) for k, v in rows.items()}
    pages = [
        f"/{s}/sites/new", f"/{s}/sites/{r['site']}", f"/{s}/sites/{r['site']}/edit",
        f"/{s}/sites/{r['site']}/gateways", f"/{s}/clients/{r['client']}",
        f"/{s}/clients/{r['client']}/edit", f"/{s}/relay_groups/new",
        f"/{s}/relay_groups/{r['relay_group']}", f"/{s}/relay_groups/{r['relay_group']}/edit",
        f"/{s}/resources/new", f"/{s}/resources/{r['resource']}",
        f"/{s}/resources/{r['resource']}/edit", f"/{s}/policies/new",
        f"/{s}/policies/{r['policy']}", f"/{s}/policies/{r['policy']}/edit",
        f"/{s}/actors/users/new", f"/{s}/actors/service_accounts/new",
        f"/{s}/actors/{r['user']}", f"/{s}/actors/{r['user']}/edit",
        f"/{s}/actors/{r['user']}/edit_groups", f"/{s}/actors/users/{r['user']}/new_identity",
        f"/{s}/actors/service_accounts/{r['service']}/new_identity",
        f"/{s}/groups/new", f"/{s}/groups/{r['group']}", f"/{s}/groups/{r['group']}/edit",
        f"/{s}/groups/{r['group']}/edit_actors", f"/{s}/settings/account/edit",
        f"/{s}/settings/account/notifications/edit", f"/{s}/settings/dns",
        f"/{s}/settings/api_clients/new", f"/{s}/settings/api_clients/{r['api_client']}",
        f"/{s}/settings/api_clients/{r['api_client']}/edit",
        f"/{s}/settings/identity_providers/openid_connect/new",
        f"/{s}/settings/identity_providers/google_workspace/new",
    ]  # fmt: skip
    if r["oidc"]:
        pages.append(f"/{s}/settings/identity_providers/openid_connect/{r['oidc']}/edit")
    if r["gateway"]:
        pages.append(f"/{s}/gateways/{r['gateway']}")
    return pages


def values(offered: list[str], foreign: list[str]) -> st.SearchStrategy[Any]:
    """One field's value (or several, for multi-value fields)."""
    own = [v for v in offered if v] or [""]
    one = st.one_of(
        st.sampled_from(own),
        st.sampled_from(own),
        st.sampled_from(foreign),
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from([LONG, "9" * 400, "-1", "1e400", "<script>x</script>", f"x{NUL}"]),
        st.text(max_size=20),
    )
    return st.one_of(one, st.lists(one, min_size=2, max_size=3))


@st.composite
def posts(draw_: Any, fields: dict[str, list[str]], foreign: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, offered in fields.items():
        if draw_(st.integers(0, 6)) == 0:
            continue  # missing
        data[name] = draw_(values(offered, foreign))
    if draw_(st.integers(0, 4)) == 0:
        data[draw_(st.sampled_from(["extra", NUL, LONG, "id", "account_id"]))] = draw_(
            values([], foreign)
        )
    return data


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    # The test client encodes str values; a lone surrogate cannot be, a browser sends U+FFFD.
    def fix(v: Any) -> Any:
        if isinstance(v, list):
            return [fix(x) for x in v]
        return str(v).encode("utf-8", "replace").decode()

    return {fix(k): fix(v) for k, v in data.items()}


def _fuzz_pages(
    client: Client, pages: list[str], acme: Acme, foreign: list[str], *, signed_in: bool
) -> tuple[int, int, list[str]]:
    """POST every form of `pages`; returns (forms, posts, problems)."""
    other_account = Account.objects.get(slug="other")
    other_changes = ChangeLog.objects.filter(account_id=other_account.pk).count()
    problems: list[str] = []
    forms_seen = posted = 0
    for page in pages:
        response = client.get(page)
        if response.status_code >= 500:
            problems.append(f"GET {page}: {response.status_code}")
        if response.status_code != 200:
            continue  # a row an earlier form deleted
        for action, fields in forms_of(response.content.decode()):
            target = action or page
            if not target.startswith("/") or SKIP_ACTIONS.search(target):
                continue
            forms_seen += 1
            for data in draw(posts(fields, foreign), POSTS):
                data = _clean(data)
                before = ChangeLog.objects.filter(account_id=acme.account.pk).count()
                answer = client.post(target, data)
                posted += 1
                status = answer.status_code
                wrote = ChangeLog.objects.filter(account_id=acme.account.pk).count() - before
                if status >= 500:
                    problems.append(f"POST {target} {data!r:.400}: {status}")
                elif status not in (200, 302, 303) and wrote:
                    problems.append(f"POST {target} answered {status} but wrote {wrote} rows")
                if signed_in and ("sign_in" in answer.get("Location", "") or status == 401):
                    inject_session(client, acme.admin_identity)  # a form signed us out
        assert ChangeLog.objects.filter(account_id=other_account.pk).count() == other_changes, (
            f"another account's rows changed after {page}"
        )
    return forms_seen, posted, problems


def test_every_portal_form_refuses_hostile_input() -> None:
    acme, rows, foreign = make_world()
    client = Client(HTTP_USER_AGENT=UA, raise_request_exception=False)
    inject_session(client, acme.admin_identity)
    # Edit and new pages first: detail pages have delete buttons.
    pages = sorted(form_pages(acme, rows), key=lambda p: not p.endswith(EDITING))
    forms_seen, posted, problems = _fuzz_pages(client, pages, acme, foreign, signed_in=True)
    # Signed out: the account's sign-in page (email code, username/password) and sign-up.
    anonymous = Client(HTTP_USER_AGENT=UA, raise_request_exception=False)
    provider = acme.email_provider.pk
    public = [f"/{acme.account.slug}", f"/{acme.account.slug}/sign_in/providers/email/{provider}",
              "/sign_up"]  # fmt: skip
    found = _fuzz_pages(anonymous, public, acme, foreign, signed_in=False)
    print(f"{forms_seen} + {found[0]} forms, {posted + found[1]} posts")
    assert forms_seen >= 25 and found[0] >= 2, (forms_seen, found[0])
    problems += found[2]
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_REFERER"])
def test_nul_in_a_request_header_is_400(header: str) -> None:
    acme = make_acme(userpass=True)
    client = Client(raise_request_exception=False)
    client.defaults[header] = f"Mozilla{NUL}"
    assert client.get(f"/{acme.account.slug}").status_code == 400
    data = {"userpass[provider_identifier]": "admin", "userpass[secret]": "x"}
    provider = acme.userpass_provider
    assert provider is not None
    url = f"/{acme.account.slug}/sign_in/providers/{provider.pk}/verify_credentials"
    assert client.post(url, data).status_code == 400
