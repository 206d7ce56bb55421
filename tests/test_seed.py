"""The development seed (domain.md §6): shape, static tokens, idempotency, reset, the command."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context
from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from accounts.services.sign_in import userpass_verify
from accounts.services.tokens import authenticate, token_use
from firezone import seed
from firezone.errors import Unauthorized
from firezone.models import ChangeLog
from gateways.models import Client, Gateway, NetworkAddress, Relay, RelayGroup, Site
from gateways.services.gateways import gateway_authenticate
from gateways.services.relays import relay_authenticate
from resources.models import Flow, Policy, Resource
from tests.api import ApiClient

pytestmark = pytest.mark.django_db

SMALL = {"synced_groups": 20, "max_clients_per_user": 5}

# Values quoted in domain.md §6, checked against what the seed computes and stores.
SPEC_HASHES = {
    seed.RELAY_TOKEN.id: "c3c9a031ae98f111ada642fddae546de4e16ceb85214ab4f1c9d0de1fc472797",
    seed.ACCOUNT_RELAY_TOKEN.id: "af133f7efe751ca978ec3e5fadf081ce9ab50138ff52862395858c3d2c11c0c5",
    seed.GATEWAY_TOKEN.id: "876f20e8d4de25d5ffac40733f280782a7d8097347d77415ab6e4e548f13d2ee",
    seed.CLIENT_TOKEN.id: "5c1d6795ea1dd08b6f4fd331eeaffc12032ba171d227f328446f2d26b96437e5",
}
DEV_KEY_BASE = "5OVYJ83AcoQcPmdKNksuBhJFBhjHD1uUa9mDOHV/6EIdBQ6pXksIhkVeWIzFk5S2"
DEV_SALT = "t01wa0K4lUd7mKa0HAtZdE+jFOPDDej2"
COMPOSE_CLIENT = (
    "n.SFMyNTY.g2gDaANtAAAAJGM4OWJjYzhjLTkzOTItNGRhZS1hNDBkLTg4OGFlZjZkMjhlMG0AAAAkN2RhN2QxY2Qt"
    "MTExYy00NGE3LWI1YWMtNDAyN2I5ZDIzMGU1bQAAACtBaUl5XzZwQmstV0xlUkFQenprQ0ZYTnFJWktXQnMyRGR3XzJ2"
    "Z0lRdkZnbgYAR_ywiZQBYgABUYA.PLNlzyqMSgZlbQb1QX5EzZgYNuY9oeOddP0qDkTwtGg"
)
COMPOSE_GATEWAY = (
    ".SFMyNTY.g2gDaANtAAAAJGM4OWJjYzhjLTkzOTItNGRhZS1hNDBkLTg4OGFlZjZkMjhlMG0AAAAkMjI3NDU2MGIt"
    "ZTk3Yi00NWU0LThiMzQtNjc5Yzc2MTdlOThkbQAAADhPMDJMN1VTMkozVklOT01QUjlKNklMODhRSVFQNlVPOEFRVk82"
    "VTVJUEwwVkpDMjJKR0gwPT09PW4GAAH8sImUAWIAAVGA.tAm2O9FcyF67VAF3rZdwQpeADrYOIs3S2l2K51G26OM"
)
COMPOSE_RELAY = (
    ".SFMyNTY.g2gDaAN3A25pbG0AAAAkZTgyZmNkYzEtMDU3YS00MDE1LWI5MGItM2IxOGYwZjI4MDUzbQAAADhDMTRO"
    "R0E4N0VKUlIwM0c0UVBSMDdBOUM2Rzc4NFRTU1RIU0Y0VEk1VDBHRDhENkwwVlJHPT09PW4GAOb7sImUAWIAAVGA."
    "e_k2YXxBOSmqVSu5RRscjZJBkZ7OAGzkpr5X2ge1MNo"
)
STANDARD = [
    {"protocol": "tcp", "ports": ["80", "433"]},
    {"protocol": "udp", "ports": ["53"]},
    {"protocol": "icmp", "ports": []},
]
# name → (type, stored address, address_description, ip_stack, filters)
EXPECTED_RESOURCES = {
    "foobar.com": ("dns", "foobar.com", "https://foobar.com/", "dual", []),
    "**.firez.one": ("dns", "**.firez.one", "https://firez.one/", "dual", []),
    "*.firezone.dev": ("dns", "*.firezone.dev", "https://firezone.dev/", "dual", []),
    "example.com": ("dns", "example.com", "https://example.com:1234/", "dual", []),
    "ip6only": ("dns", "ip6only.me", "https://ip6only.me/", "dual", []),
    "Example": ("dns", "*.example.com", None, "dual", []),
    "gitlab.mycorp.com": (
        "dns",
        "gitlab.mycorp.com",
        "https://gitlab.mycorp.com/",
        "dual",
        STANDARD,
    ),
    "Public DNS": ("ip", "1.2.3.4", "http://1.2.3.4:3000/", None, STANDARD),
    "MyCorp Network": ("cidr", "172.20.0.0/16", "172.20.0.1/16", None, []),
    "MyCorp Network (IPv6)": ("cidr", "172:20::/64", "172:20:0::1/64", None, []),
    "**.httpbin": ("dns", "**.httpbin", "http://httpbin/", "dual", STANDARD),
    "**.httpbin.search.test": (
        "dns",
        "**.httpbin.search.test",
        "http://httpbin/",
        "dual",
        STANDARD,
    ),
    "Internet": ("internet", None, None, None, []),
}


@pytest.fixture
def seeded() -> dict:
    return seed.seed(**SMALL)


def _firezone() -> Account:
    return Account.objects.get(slug="firezone")


def _counts() -> dict[str, int]:
    models = (
        Account,
        Actor,
        ActorGroup,
        ActorGroupMembership,
        AuthIdentity,
        AuthProvider,
        Token,
        Client,
        Gateway,
        Relay,
        RelayGroup,
        Site,
        Resource,
        Policy,
        Flow,
        NetworkAddress,
        ChangeLog,
    )
    return {m.__name__: m.objects.count() for m in models}


# --- shape --------------------------------------------------------------------------------------


def test_accounts_and_providers(seeded: dict) -> None:
    firezone = _firezone()
    other = Account.objects.get(slug="not_firezone")
    assert firezone.pk == seed.FIREZONE_ACCOUNT_ID and other.pk == seed.OTHER_ACCOUNT_ID
    assert firezone.name == "Firezone Account" and other.name == "Other Corp Account"
    assert firezone.features == dict.fromkeys(Account.FEATURES, True)
    assert firezone.limits == seed.FIREZONE_LIMITS
    assert firezone.metadata["stripe"]["customer_id"] == "cus_PZKIfcHB6SSBA4"
    assert firezone.type == "Enterprise"
    assert firezone.config["search_domain"] == "httpbin.search.test"
    assert [a["slug"] for a in seeded["accounts"]] == ["firezone", "not_firezone"]
    assert seeded["accounts"][0]["id"] == str(seed.FIREZONE_ACCOUNT_ID)
    assert {login["identifier"] for login in seeded["accounts"][0]["sign_in"]} == {
        "firezone@localhost.local",
        "firezone-unprivileged-1@localhost.local",
    }

    providers = {p.name: p for p in AuthProvider.objects.filter(account=firezone)}
    assert {n: p.adapter for n, p in providers.items()} == {
        "Email": "email",
        "OIDC": "openid_connect",
        "Mock": "mock",
        "UserPass": "userpass",
    }
    assert providers["OIDC"].adapter_config == seed.OIDC_CONFIG
    assert providers["OIDC"].last_synced_at is not None
    assert providers["Mock"].adapter_config == {
        "num_actors": 500,
        "num_groups": 2500,
        "max_actors_per_group": 25,
    }
    assert sorted(AuthProvider.objects.filter(account=other).values_list("adapter", flat=True)) == [
        "email",
        "userpass",
    ]


def test_actors_identities_and_sign_in(seeded: dict) -> None:
    firezone = _firezone()
    actors = dict(Actor.objects.filter(account=firezone).values_list("name", "type"))
    assert len(actors) == 14
    assert actors["Firezone Admin"] == "account_admin_user"
    assert actors["Backup Manager"] == "service_account"
    assert actors["Terraform"] == "api_client"
    assert sum(t == "account_user" for t in actors.values()) == 11
    other_actors = dict(
        Actor.objects.filter(account__slug="not_firezone").values_list("name", "type")
    )
    assert other_actors == {
        "Other Unprivileged": "account_user",
        "Other Admin": "account_admin_user",
        "Terraform": "api_client",
    }

    identities = AuthIdentity.objects.filter(account=firezone)
    assert identities.count() == 2 + 3 + 10
    userpass = identities.get(pk=seed.UNPRIVILEGED_USERPASS_IDENTITY_ID)
    assert userpass.provider.adapter == "userpass"
    assert userpass.provider_identifier == "firezone-unprivileged-1@localhost.local"
    admin_oidc = identities.get(provider__adapter="openid_connect", actor__name="Firezone Admin")
    assert admin_oidc.created_by == "provider"
    assert admin_oidc.provider_state == {
        "claims": {"email": "firezone@localhost.local", "group": "users"}
    }
    for n in range(1, 11):
        identity = identities.get(provider_identifier=f"user-{n}@localhost.local")
        assert identity.actor.name == f"Firezone Unprivileged {n}"
    assert not AuthIdentity.objects.filter(
        account__slug="not_firezone", provider__adapter="email"
    ).exists()

    # Every printed login works.
    for account in seeded["accounts"]:
        provider = AuthProvider.objects.get(account__slug=account["slug"], adapter="userpass")
        for login in account["sign_in"]:
            identity = userpass_verify(
                provider=provider, identifier=login["identifier"], password=login["password"]
            )
            assert identity.email == login["identifier"]


def test_groups_and_memberships(seeded: dict) -> None:
    firezone = _firezone()
    groups = ActorGroup.objects.filter(account=firezone)
    oidc = AuthProvider.objects.get(account=firezone, adapter="openid_connect")
    everyone = groups.get(type="managed")
    assert everyone.name == "Everyone"
    # Users and admins, not the service account.
    assert everyone.memberships.count() == 12
    bulk = groups.filter(provider=oidc).exclude(provider_identifier="dummy_oidc_group_id")
    assert bulk.count() == SMALL["synced_groups"]
    assert set(bulk.values_list("created_by", flat=True)) == {"provider"}
    for group in bulk:
        assert 1 <= group.memberships.count() <= 13
    synced = groups.get(name=seed.SYNCED_GROUP_NAME)
    assert synced.provider_id == oidc.pk and synced.created_by == "provider"
    assert synced.provider_identifier == "dummy_oidc_group_id"
    assert set(synced.memberships.values_list("actor__name", flat=True)) == {
        "Firezone Admin",
        "Firezone Unprivileged",
    }
    assert set(groups.get(name="Finance").memberships.values_list("actor__name", flat=True)) == {
        "Firezone Unprivileged"
    }
    for name in ("Engineering", *seed.ADMIN_STATIC_GROUPS):
        group = groups.get(name=name, provider__isnull=True)
        assert group.type == "static"
        assert list(group.memberships.values_list("actor__name", flat=True)) == ["Firezone Admin"]
    assert groups.count() == 1 + SMALL["synced_groups"] + 3 + len(seed.ADMIN_STATIC_GROUPS)
    assert ActorGroup.objects.filter(account__slug="not_firezone").count() == 1


def test_resources_policies_sites_gateways_relays(seeded: dict) -> None:
    firezone = _firezone()
    resources = {
        r.name: (r.type, r.address, r.address_description, r.ip_stack, r.filters)
        for r in Resource.objects.filter(account=firezone)
    }
    assert resources == EXPECTED_RESOURCES
    site = Site.objects.get(account=firezone, name="mycro-aws-gws", managed_by="account")
    for resource in Resource.objects.filter(account=firezone).exclude(type="internet"):
        assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [site.pk]
    internet = Resource.objects.get(account__slug="not_firezone", type="internet")
    assert internet.connections.get().gateway_group.is_internet_site

    policies = Policy.objects.filter(account=firezone).select_related("actor_group", "resource")
    assert len(policies) == 11
    for policy in policies:
        assert policy.description == f"{policy.actor_group.name} → {policy.resource.name}"
        assert policy.conditions == []
    assert {(p.actor_group.name, p.resource.name) for p in policies} == {
        ("Everyone", "foobar.com"),
        (seed.SYNCED_GROUP_NAME, "**.firez.one"),
        ("Everyone", "example.com"),
        ("Everyone", "*.firezone.dev"),
        (seed.SYNCED_GROUP_NAME, "ip6only"),
        ("Everyone", "Example"),
        ("Engineering", "gitlab.mycorp.com"),
        (seed.SYNCED_GROUP_NAME, "MyCorp Network"),
        (seed.SYNCED_GROUP_NAME, "MyCorp Network (IPv6)"),
        ("Everyone", "**.httpbin"),
        ("Everyone", "**.httpbin.search.test"),
    }

    gateways = Gateway.objects.filter(group=site)
    assert gateways.count() == 12
    assert sorted(gateways.values_list("last_seen_remote_ip", flat=True)) == sorted(
        seed.GATEWAY_IPS
    )
    for gateway in gateways:
        assert gateway.name.startswith("gw-") and len(gateway.name) == 8
        assert gateway.ipv4 and gateway.ipv6
    assert Site.objects.filter(account__slug="not_firezone").count() == 1

    global_group = RelayGroup.objects.get(account__isnull=True, name="fz-global-relays")
    assert sorted(str(ip) for ip in global_group.relays.values_list("ipv4", flat=True)) == [
        f"189.172.72.{n}" for n in range(111, 117)
    ]
    assert set(global_group.relays.values_list("account_id", flat=True)) == {None}
    account_group = RelayGroup.objects.get(account=firezone, name="mycorp-aws-relays")
    assert account_group.relays.count() == 6
    assert set(account_group.relays.values_list("account_id", flat=True)) == {firezone.pk}
    # §8.15 fixed: the account group's token is its own.
    account_token = Token.objects.get(pk=seed.ACCOUNT_RELAY_TOKEN.id)
    assert account_token.relay_group_id == account_group.pk
    assert account_token.account_id == firezone.pk
    global_token = Token.objects.get(pk=seed.RELAY_TOKEN.id)
    assert global_token.relay_group_id == global_group.pk and global_token.account_id is None


def test_clients_tokens_and_flow(seeded: dict) -> None:
    firezone = _firezone()
    named = dict(
        Client.objects.filter(account=firezone, name__startswith="FZ ").values_list(
            "name", "actor__name"
        )
    )
    assert named == {
        "FZ User iPhone": "Firezone Unprivileged",
        "FZ User Android": "Firezone Unprivileged",
        "FZ User Surface": "Firezone Unprivileged",
        "FZ User Rendering Station": "Firezone Unprivileged",
        "FZ Admin Laptop": "Firezone Admin",
    }
    laptop = Client.objects.get(name="FZ Admin Laptop")
    assert laptop.device_serial == "FVFHF246Q72Z"
    vendor_id = Client.objects.get(name="FZ User iPhone").identifier_for_vendor
    assert vendor_id is not None and vendor_id.startswith("APPL-")
    for n in range(1, 11):
        clients = Client.objects.filter(actor__name=f"Firezone Unprivileged {n}")
        assert 2 <= clients.count() <= SMALL["max_clients_per_user"]
        assert all(c.name.startswith("My ") and c.ipv4 and c.ipv6 for c in clients)
        emails = {c.identity.provider_identifier for c in clients if c.identity is not None}
        assert emails == {f"user-{n}@localhost.local"} and all(c.identity for c in clients)
    all_clients = Client.objects.filter(account=firezone)
    assert all_clients.values("ipv4").distinct().count() == all_clients.count()

    by_type = {t: Token.objects.filter(type=t, account=firezone).count() for t in Token.Type.values}
    assert by_type["browser"] == 12
    assert by_type["client"] == 2
    assert by_type["gateway_group"] == 1
    assert by_type["email"] == 0
    assert Token.objects.filter(type="relay_group").count() == 2
    for token_id, spec_hash in SPEC_HASHES.items():
        assert Token.objects.get(pk=token_id).secret_hash == spec_hash
    client_token = Token.objects.get(pk=seed.CLIENT_TOKEN.id)
    assert client_token.identity is not None
    assert client_token.identity.provider.adapter == "email"
    assert client_token.created_by_user_agent == "iOS/18.1.0 connlib/1.3.5"
    expected_expiry = timezone.now() + timedelta(days=7)
    assert client_token.expires_at is not None
    assert abs(client_token.expires_at - expected_expiry) < timedelta(minutes=5)
    backup = Token.objects.get(pk=seed.SERVICE_ACCOUNT_TOKEN.id)
    assert backup.actor is not None and backup.actor.name == "Backup Manager"
    assert backup.name is not None and backup.name.startswith("tok-")

    flow = Flow.objects.select_related(
        "policy__actor_group", "actor_group_membership", "client", "gateway", "resource", "token"
    ).get()
    assert flow.client.name == "FZ User iPhone"
    assert flow.resource.name == "MyCorp Network"
    assert flow.gateway.last_seen_remote_ip == seed.GATEWAY_IPS[0]
    # §8.15 fixed: the policy's group is the membership's group.
    assert flow.policy.actor_group_id == flow.actor_group_membership.group_id
    assert flow.policy.actor_group.name == seed.SYNCED_GROUP_NAME
    assert flow.token.type == "browser" and flow.token.actor is not None
    assert flow.token.actor.name == "Firezone Unprivileged"
    assert flow.expires_at == flow.token.expires_at


def test_static_hashes_match_spec() -> None:
    statics = (seed.RELAY_TOKEN, seed.ACCOUNT_RELAY_TOKEN, seed.GATEWAY_TOKEN, seed.CLIENT_TOKEN)
    assert {s.id: s.hash for s in statics} == SPEC_HASHES
    assert seed.CLIENT_TOKEN.hash == tokens.hash_secret(
        "n", seed.CLIENT_TOKEN.fragment, seed.CLIENT_TOKEN.salt
    )


# --- printed tokens -----------------------------------------------------------------------------


def _check_device_tokens(printed: dict[str, str]) -> None:
    context = Context(type="client", user_agent="iOS/18.1.0 connlib/1.3.5", remote_ip="10.0.0.1")
    subject = authenticate(printed["client"], context=context)
    assert subject.actor.name == "Firezone Unprivileged"
    assert subject.token_id == seed.CLIENT_TOKEN.id
    subject = authenticate(printed["service_account"], context=context)
    assert subject.actor.name == "Backup Manager"
    device = Context(remote_ip="10.0.0.2", user_agent="Linux/6.0 relay/1.0.0")
    site, token = gateway_authenticate(printed["gateway"], context=device)
    assert site.name == "mycro-aws-gws" and token.pk == seed.GATEWAY_TOKEN.id
    group, token = relay_authenticate(printed["relay"], context=device)
    assert group.name == "fz-global-relays" and token.account_id is None
    group, token = relay_authenticate(printed["account_relay"], context=device)
    assert group.name == "mycorp-aws-relays" and group.account_id == seed.FIREZONE_ACCOUNT_ID


def test_printed_device_tokens_authenticate(seeded: dict) -> None:
    assert set(seeded["device_tokens"]) == {
        "client",
        "gateway",
        "relay",
        "account_relay",
        "service_account",
    }
    _check_device_tokens(seeded["device_tokens"])


def test_printed_api_tokens_reach_their_account_through_the_api(seeded: dict) -> None:
    assert seeded["api_url"] == settings.API_EXTERNAL_URL
    assert set(seeded["api_tokens"]) == {"firezone", "not_firezone"}
    for slug, token in seeded["api_tokens"].items():
        response = ApiClient(token).get("/account")
        assert response.status_code == 200, response.content
        assert response.json()["data"]["slug"] == slug
    actor = Token.objects.get(pk=seed.API_TOKENS["firezone"].id).actor
    assert actor is not None and (actor.name, actor.type) == ("Terraform", "api_client")


def test_docker_compose_tokens_verify_with_dev_keys() -> None:
    with override_settings(TOKENS_KEY_BASE=DEV_KEY_BASE, TOKENS_SALT=DEV_SALT):
        printed = seed.seed(**SMALL)["device_tokens"]
        _check_device_tokens(printed)
        client = token_use(COMPOSE_CLIENT, context=Context(type="client"))
        assert client.pk == seed.CLIENT_TOKEN.id
        assert client.account_id == seed.FIREZONE_ACCOUNT_ID
        site, token = gateway_authenticate(COMPOSE_GATEWAY, context=Context(remote_ip="10.0.0.3"))
        assert token.pk == seed.GATEWAY_TOKEN.id and site.name == "mycro-aws-gws"
        group, token = relay_authenticate(COMPOSE_RELAY, context=Context(remote_ip="10.0.0.4"))
        assert token.pk == seed.RELAY_TOKEN.id and group.account_id is None
    # With the test keys (derived from SECRET_KEY) the compose strings are refused.
    with pytest.raises(Unauthorized):
        token_use(COMPOSE_CLIENT, context=Context(type="client"))


# --- idempotency and reset ----------------------------------------------------------------------


def test_second_run_changes_nothing(seeded: dict) -> None:
    before = _counts()
    again = seed.seed(**SMALL)
    assert again == seeded
    assert _counts() == before


def test_expired_tokens_are_extended_on_rerun(seeded: dict) -> None:
    past = timezone.now() - timedelta(days=1)
    api_token_id = seed.API_TOKENS["firezone"].id
    Token.objects.filter(
        pk__in=[seed.CLIENT_TOKEN.id, seed.SERVICE_ACCOUNT_TOKEN.id, api_token_id]
    ).update(expires_at=past)
    again = seed.seed(**SMALL)
    assert again["device_tokens"] == seeded["device_tokens"]
    assert again["api_tokens"] == seeded["api_tokens"]
    assert ApiClient(again["api_tokens"]["firezone"]).get("/account").status_code == 200
    client = Token.objects.get(pk=seed.CLIENT_TOKEN.id)
    assert client.expires_at is not None and client.expires_at > timezone.now() + timedelta(days=6)
    service_expires_at = Token.objects.get(pk=seed.SERVICE_ACCOUNT_TOKEN.id).expires_at
    assert service_expires_at is not None and service_expires_at > timezone.now()
    _check_device_tokens(again["device_tokens"])


def test_reset_then_seed_again(seeded: dict) -> None:
    shape = list(Client.objects.order_by("name", "actor__name").values_list("actor__name", "name"))
    seed.reset()
    assert not Account.objects.filter(slug__in=["firezone", "not_firezone"]).exists()
    assert not RelayGroup.objects.filter(name="fz-global-relays").exists()
    assert not Token.objects.exists()
    assert not get_user_model().objects.filter(username=seed.STAFF_USERNAME).exists()
    again = seed.seed(**SMALL)
    assert again["accounts"] == seeded["accounts"]
    # The seeded random choices repeat: same clients per user.
    assert (
        list(Client.objects.order_by("name", "actor__name").values_list("actor__name", "name"))
        == shape
    )
    _check_device_tokens(again["device_tokens"])


def test_command_prints_json() -> None:
    out = io.StringIO()
    call_command(
        "seed", "--json", "--synced-groups", "3", "--max-clients-per-user", "2", stdout=out
    )
    result = json.loads(out.getvalue())
    assert set(result) == {"staff", "accounts", "device_tokens", "api_url", "api_tokens"}
    assert ActorGroup.objects.filter(provider__adapter="openid_connect").count() == 3 + 1
    out = io.StringIO()
    call_command("seed", "--synced-groups", "3", stdout=out)
    assert "Seed data ready." in out.getvalue()
    assert "firezone@localhost.local / Firezone1234" in out.getvalue()
    assert f"firezone API client token: {result['api_tokens']['firezone']}" in out.getvalue()
