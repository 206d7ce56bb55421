"""Generic checks over every admin route of portal.md §2.2 (NetBox-style view test case).

For each route: signed-out visitors are sent to sign in, regular users get the 404 page, an
admin asking for another account's object (or a malformed id) gets the 404 page and changes
nothing, and an admin's own objects answer (200, or a redirect for pages that send elsewhere).
`ROUTES` must name every admin route: a new route without an entry fails
`test_every_admin_route_is_covered`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from accounts import portal_urls
from accounts.models import Account, Actor, AuthProvider
from accounts.tests.factories import (
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from gateways import urls as gateway_urls
from gateways.tests.factories import (
    ClientFactory,
    GatewayFactory,
    RelayFactory,
    RelayGroupFactory,
    SiteFactory,
)
from resources import urls as resource_urls
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory

pytestmark = pytest.mark.django_db

ALL_FEATURES = {name: True for name in Account.FEATURES}


def _resource(account: Account) -> Any:
    resource = ResourceFactory(account=account)
    ConnectionFactory(resource=resource, gateway_group=SiteFactory(account=account))
    return resource


def _relay(account: Account) -> Any:
    return RelayFactory(group=RelayGroupFactory(account=account), account=account)


# Route name → (object maker for an account, extra URL kwargs). None: the route takes no id.
Maker = Callable[[Account], Any]
ROUTES: dict[str, tuple[Maker | None, dict[str, str]]] = {
    # sites & gateways
    "sites": (None, {}),
    "site_new": (None, {}),
    "site": (lambda a: SiteFactory(account=a), {}),
    "site_edit": (lambda a: SiteFactory(account=a), {}),
    "site_new_token": (lambda a: SiteFactory(account=a), {}),
    "site_gateways": (lambda a: SiteFactory(account=a), {}),
    "gateway": (lambda a: GatewayFactory(group=SiteFactory(account=a)), {}),
    # clients
    "clients": (None, {}),
    "client": (lambda a: ClientFactory(actor=ActorFactory(account=a)), {}),
    "client_edit": (lambda a: ClientFactory(actor=ActorFactory(account=a)), {}),
    # relays
    "relay_groups": (None, {}),
    "relay_group_new": (None, {}),
    "relay_group": (lambda a: RelayGroupFactory(account=a), {}),
    "relay_group_edit": (lambda a: RelayGroupFactory(account=a), {}),
    "relay_group_new_token": (lambda a: RelayGroupFactory(account=a), {}),
    "relay": (_relay, {}),
    # resources & policies
    "resources": (None, {}),
    "resource_new": (None, {}),
    "resource": (_resource, {}),
    "resource_edit": (_resource, {}),
    "resource_access": (_resource, {}),
    "policies": (None, {}),
    "policy_new": (None, {}),
    "policy": (lambda a: PolicyFactory(account=a, resource=_resource(a)), {}),
    "policy_edit": (lambda a: PolicyFactory(account=a, resource=_resource(a)), {}),
    # actors & groups
    "actors": (None, {}),
    "actor_new": (None, {}),
    "user_new": (None, {}),
    "user_new_identity": (lambda a: ActorFactory(account=a), {}),
    "service_account_new": (None, {}),
    "service_account_new_identity": (lambda a: ActorFactory(account=a, service_account=True), {}),
    "actor": (lambda a: ActorFactory(account=a), {}),
    "actor_edit": (lambda a: ActorFactory(account=a), {}),
    "actor_edit_groups": (lambda a: ActorFactory(account=a), {}),
    "actor_access": (lambda a: ActorFactory(account=a), {}),
    "groups": (None, {}),
    "group_new": (None, {}),
    "group": (lambda a: GroupFactory(account=a), {}),
    "group_edit": (lambda a: GroupFactory(account=a), {}),
    "group_edit_actors": (lambda a: GroupFactory(account=a), {}),
    # settings
    "settings_account": (None, {}),
    "settings_account_edit": (None, {}),
    "settings_notifications_edit": (None, {}),
    "settings_dns": (None, {}),
    "settings_audit_log": (None, {}),
    "settings_audit_log_export": (None, {"format": "csv"}),
    "api_clients": (None, {}),
    "api_clients_beta": (None, {}),
    "api_client_new": (None, {}),
    "api_client": (lambda a: ActorFactory(account=a, api_client=True), {}),
    "api_client_edit": (lambda a: ActorFactory(account=a, api_client=True), {}),
    "api_client_new_token": (lambda a: ActorFactory(account=a, api_client=True), {}),
    "identity_providers": (None, {}),
    "identity_provider_new": (None, {}),
    "system_provider": (lambda a: AuthProvider.objects.get(account=a, adapter="email"), {}),
    "identity_provider_adapter_new": (None, {"adapter": "openid_connect"}),
    "identity_provider": (
        lambda a: ProviderFactory(account=a, oidc=True),
        {"adapter": "openid_connect"},
    ),
    "identity_provider_edit": (
        lambda a: ProviderFactory(account=a, oidc=True),
        {"adapter": "openid_connect"},
    ),
    "identity_provider_connect": (
        lambda a: ProviderFactory(account=a, oidc=True),
        {"adapter": "openid_connect"},
    ),
    "identity_provider_connect_callback": (
        lambda a: ProviderFactory(account=a, oidc=True),
        {"adapter": "openid_connect"},
    ),
}
# Routes that hand the browser to another place by design (an IdP, a page of the wizard).
REDIRECTING = {"identity_provider_connect", "identity_provider_connect_callback"}
# The IdP connect flow answers an unknown provider with the flash "Provider does not exist." and
# the providers list (portal.md §4.13.7), not the 404 page: it leaks nothing either.
NOT_FOUND_TO_LIST = {"identity_provider_connect", "identity_provider_connect_callback"}


def assert_not_found(response: Any, name: str) -> None:
    if name in NOT_FOUND_TO_LIST:
        assert response.status_code == 302
        assert response["Location"] == "/acme/settings/identity_providers"
    else:
        assert response.status_code == 404


def admin_patterns() -> list[URLPattern]:
    return [
        p
        for module in (gateway_urls, resource_urls, portal_urls)
        for p in module.urlpatterns
        if isinstance(p, URLPattern)
    ]


def test_every_admin_route_is_covered() -> None:
    names = [p.name for p in admin_patterns()]
    assert len(names) == len(set(names))
    assert set(names) == set(ROUTES)


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.FEATURES = {**settings.FEATURES, **ALL_FEATURES}
    return make_acme(features=ALL_FEATURES)


def _url(name: str, account: Account, obj: Any = None, bad_id: str | None = None) -> str:
    maker, extra = ROUTES[name]
    kwargs: dict[str, str] = {"account": account.slug or str(account.pk), **extra}
    if maker is not None:
        kwargs["id"] = bad_id or str(obj.pk)
    return reverse(name, kwargs=kwargs)


def _admin_client(acme: Acme) -> Client:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    return client


ID_ROUTES = sorted(name for name, (maker, _) in ROUTES.items() if maker is not None)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_signed_out_visitors_are_sent_to_sign_in(acme: Acme, name: str) -> None:
    maker = ROUTES[name][0]
    url = _url(name, acme.account, maker(acme.account) if maker else None)
    response = Client(HTTP_USER_AGENT=UA).get(url)
    assert response.status_code == 302
    assert response["Location"] == "/acme?" + urlencode({"redirect_to": url})


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_regular_users_get_404(acme: Acme, name: str) -> None:
    maker = ROUTES[name][0]
    url = _url(name, acme.account, maker(acme.account) if maker else None)
    user = ActorFactory(account=acme.account, type=Actor.Type.ACCOUNT_USER)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, identity)
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "delete"}).status_code == 404


@pytest.mark.parametrize("name", ID_ROUTES)
def test_another_accounts_object_is_404_and_untouched(acme: Acme, name: str) -> None:
    other = make_other_account()
    make = ROUTES[name][0]
    assert make is not None  # an id route
    obj = make(other)
    client = _admin_client(acme)
    # The other account's object under our account's URL.
    url = _url(name, acme.account, obj)
    assert_not_found(client.get(url), name)
    for action in ("delete", "disable", "revoke_all"):
        response = client.post(url, {"action": action})
        if name in NOT_FOUND_TO_LIST:  # GET-only routes
            assert response.status_code == 405
        else:
            assert response.status_code == 404
    assert type(obj).objects.filter(pk=obj.pk).exists()
    # The other account's own URL: our session does not reach it (sign-in redirect).
    assert client.get(_url(name, other, obj)).status_code == 302


@pytest.mark.parametrize("name", ID_ROUTES)
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_malformed_and_unknown_ids_are_404(acme: Acme, name: str, bad_id: str) -> None:
    client = _admin_client(acme)
    assert_not_found(client.get(_url(name, acme.account, bad_id=bad_id)), name)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_route_answers_an_admin(acme: Acme, name: str) -> None:
    maker = ROUTES[name][0]
    url = _url(name, acme.account, maker(acme.account) if maker else None)
    response = _admin_client(acme).get(url)
    allowed = (
        {200, 302} if name in REDIRECTING or "beta" in name or name == "api_clients" else {200}
    )
    assert response.status_code in allowed, (url, response.status_code)


def make_other_account() -> Account:
    other = make_acme_like("Other", "other")
    return other


def make_acme_like(name: str, slug: str) -> Account:
    from accounts.tests.factories import AccountFactory

    account = AccountFactory(name=name, slug=slug, features=ALL_FEATURES)
    ProviderFactory(account=account, name="Email")
    return account
