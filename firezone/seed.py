"""The development data set of domain.md §6, built through the services.

`seed()` is idempotent: when the account slug `firezone` exists nothing is created again and the
same output is returned (only an expired client, service-account or API token is extended, so the
printed tokens keep working days later). `reset()` removes what the seed created so it can start
over.

Ids and secrets are always the static ones of §6 (as with `STATIC_SEEDS=true`), so the
docker-compose tokens of the original verify when `TOKENS_KEY_BASE`/`TOKENS_SALT` are the dev
values (the DEBUG defaults in settings). Static ids are set right after a row is created, inside
the same transaction and before anything references the row (the services generate their own).

Differences from the original seeds (domain.md §8 item 15 and practicalities):
* the "mycorp-aws-relays" token belongs to its own relay group (not the global one);
* policies have descriptions ("Everyone → foobar.com");
* the flow uses "FZ User iPhone" → gateway #1 → MyCorp Network with the policy
  "Group:Synced Group with long name → MyCorp Network" and the unprivileged user's membership of
  that group (policy group == membership group, and the policy grants that resource);
* the OIDC discovery document is not fetched (no network); its config is only stored;
* email sign-in tokens (§6 item 7) are not created: they live 15 minutes and only their hash is
  stored, so they could not be printed again on an idempotent run;
* the service-account token has static values too (chosen here, §6 has none), so it can be printed
  on every run;
* each account has an API client "Terraform" with a static REST API token (not in §6), printed as
  `api_tokens` (account slug → token) next to the API's base URL `api_url`;
* the 10 000 synced groups with their memberships and the many clients of the "Firezone
  Unprivileged N" users are bulk-inserted (no change-log rows: nothing listens while seeding), with
  a fixed `random.Random` so the shape is identical on every machine.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts import tokens
from accounts.auth import PROVIDER_TRAIL, Context, Subject
from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from accounts.services.accounts import account_create
from accounts.services.actors import actor_create, actor_create_system
from accounts.services.groups import group_create, group_create_everyone
from accounts.services.identities import identity_create_system
from accounts.services.providers import provider_create_system
from accounts.services.sign_in import session_token_create
from accounts.services.tokens import IssuedToken
from accounts.services.tokens_admin import (
    api_client_token_create,
    service_account_token_create,
)
from firezone import changes
from firezone.models import ChangeLog
from firezone.names import ADJECTIVES, NOUNS
from gateways.models import Client, Gateway, NetworkAddress, RelayGroup, Site
from gateways.services.addresses import CIDRS
from gateways.services.clients import client_upsert
from gateways.services.gateways import gateway_upsert
from gateways.services.relays import (
    relay_group_create,
    relay_group_create_global,
    relay_group_token_create,
    relay_group_token_create_global,
    relay_upsert,
)
from gateways.services.sites import site_create, site_create_internet, site_token_create
from resources.models import Resource
from resources.services.flows import flow_authorize
from resources.services.policies import policy_create
from resources.services.resources import resource_create, resource_create_internet

STAFF_USERNAME = "staff"
STAFF_EMAIL = "staff@localhost"
# A demo password for local development only; the seed refuses to run outside DEBUG/tests.
STAFF_PASSWORD = "Firezone1234!"

PASSWORD = "Firezone1234"
FIREZONE_SLUG = "firezone"
OTHER_SLUG = "not_firezone"
FIREZONE_ACCOUNT_ID = uuid.UUID("c89bcc8c-9392-4dae-a40d-888aef6d28e0")
OTHER_ACCOUNT_ID = uuid.UUID("9b9290bf-e1bc-4dd3-b401-511908262690")
UNPRIVILEGED_USERPASS_IDENTITY_ID = uuid.UUID("7da7d1cd-111c-44a7-b5ac-4027b9d230e5")
UNPRIVILEGED_EMAIL = "firezone-unprivileged-1@localhost.local"
ADMIN_EMAIL = "firezone@localhost.local"
OTHER_UNPRIVILEGED_EMAIL = "other-unprivileged-1@localhost.local"
OTHER_ADMIN_EMAIL = "other@localhost.local"
GLOBAL_RELAY_GROUP = "fz-global-relays"
ACCOUNT_RELAY_GROUP = "mycorp-aws-relays"
SITE_NAME = "mycro-aws-gws"  # sic (§6)
SYNCED_GROUP_NAME = "Group:Synced Group with long name"
RANDOM_SEED = 20240101
SYNCED_GROUPS = 10_000
MAX_CLIENTS_PER_USER = 241
API_TOKEN_LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class StaticToken:
    """Fixed id and secret of a seeded token; the row stores `salt` and `hash`."""

    id: uuid.UUID
    salt: str
    fragment: str
    nonce: str = ""

    @property
    def hash(self) -> str:
        return tokens.hash_secret(self.nonce, self.fragment, self.salt)


RELAY_TOKEN = StaticToken(
    id=uuid.UUID("e82fcdc1-057a-4015-b90b-3b18f0f28053"),
    salt="lZWUdgh-syLGVDsZEu_29A",
    fragment="C14NGA87EJRR03G4QPR07A9C6G784TSSTHSF4TI5T0GD8D6L0VRG====",
)
ACCOUNT_RELAY_TOKEN = StaticToken(
    id=uuid.UUID("549c4107-1492-4f8f-a4ec-a9d2a66d8aa9"),
    salt="jaJwcwTRhzQr15SgzTB2LA",
    fragment="PU5AITE1O8VDVNMHMOAC77DIKMOGTDIA672S6G1AB02OS34H5ME0====",
)
GATEWAY_TOKEN = StaticToken(
    id=uuid.UUID("2274560b-e97b-45e4-8b34-679c7617e98d"),
    salt="uQyisyqrvYIIitMXnSJFKQ",
    fragment="O02L7US2J3VINOMPR9J6IL88QIQP6UO8AQVO6U5IPL0VJC22JGH0====",
)
CLIENT_TOKEN = StaticToken(
    id=uuid.UUID("7da7d1cd-111c-44a7-b5ac-4027b9d230e5"),
    salt="kKKA7dtf3TJk0-1O2D9N1w",
    fragment="AiIy_6pBk-WLeRAPzzkCFXNqIZKWBs2Ddw_2vgIQvFg",
    nonce="n",
)
# Not in §6 (the original prints a random one): fixed here so every run prints the same token.
SERVICE_ACCOUNT_TOKEN = StaticToken(
    id=uuid.UUID("2967db4d-00af-47ab-abcb-e2ea6099a249"),
    salt="fSb9FHfe4Ydqohu7bFqdSA",
    fragment="TCJ621K54EOV34O104VMT5540PQCQP7NFH79LBM5UJTU880ISFFG====",
)
# Not in §6 either: each seeded account's API client ("Terraform") has a fixed REST API token, so
# `seed --json` hands a developer a working bearer token at once (issue 14).
API_CLIENT_NAME = "Terraform"
API_TOKENS = {
    FIREZONE_SLUG: StaticToken(
        id=uuid.UUID("bbb55462-53f2-4421-8ddc-c3a9a3748d31"),
        salt="6NmbTZWKx-36pY-qzH2AMg",
        fragment="1O2NQHQ67592VNODBLC1JV1T80RFO03S52NEQV7RU16PHJCTQ9TG====",
    ),
    OTHER_SLUG: StaticToken(
        id=uuid.UUID("87f57a49-4703-4db7-9492-92fcc333e671"),
        salt="H2-9lduYqZHELsZiVtNvTw",
        fragment="HBQRIERHHMGEEP3RS9A8BSJABHTL0S55P497I73AUQK8B6GQ1SJ0====",
    ),
}

ALL_FEATURES = dict.fromkeys(Account.FEATURES, True)
FIREZONE_LIMITS = {
    "users_count": 15,
    "monthly_active_users_count": 10,
    "service_accounts_count": 10,
    "gateway_groups_count": 3,
    "account_admin_users_count": 5,
}
FIREZONE_STRIPE = {
    "customer_id": "cus_PZKIfcHB6SSBA4",
    "subscription_id": "sub_1OkGm2ADeNU9NGxvbrCCw6m3",
    "product_name": "Enterprise",
    "billing_email": "fin@firez.one",
    "support_type": "email",
}
OIDC_CONFIG = {
    "client_id": "CLIENT_ID",
    "client_secret": "CLIENT_SECRET",
    "response_type": "code",
    "scope": "openid email name groups",
    "discovery_document_uri": "https://common.auth0.com/.well-known/openid-configuration",
}
STANDARD_FILTERS: list[dict[str, Any]] = [
    {"protocol": "tcp", "ports": ["80", "433"]},
    {"protocol": "udp", "ports": ["53"]},
    {"protocol": "icmp"},
]
STANDARD = STANDARD_FILTERS
# (name, type, address input, address_description, filters); §6 item 12.
RESOURCES: list[tuple[str, str, str, str | None, list[dict[str, Any]]]] = [
    ("foobar.com", "dns", "foobar.com", "https://foobar.com/", []),
    ("**.firez.one", "dns", "**.firez.one", "https://firez.one/", []),
    ("*.firezone.dev", "dns", "*.firezone.dev", "https://firezone.dev/", []),
    ("example.com", "dns", "example.com", "https://example.com:1234/", []),
    ("ip6only", "dns", "ip6only.me", "https://ip6only.me/", []),
    ("Example", "dns", "*.example.com", None, []),
    ("gitlab.mycorp.com", "dns", "gitlab.mycorp.com", "https://gitlab.mycorp.com/", STANDARD),
    ("Public DNS", "ip", "1.2.3.4", "http://1.2.3.4:3000/", STANDARD),
    ("MyCorp Network", "cidr", "172.20.0.1/16", "172.20.0.1/16", []),
    ("MyCorp Network (IPv6)", "cidr", "172:20:0::1/64", "172:20:0::1/64", []),
    ("**.httpbin", "dns", "**.httpbin", "http://httpbin/", STANDARD),
    ("**.httpbin.search.test", "dns", "**.httpbin.search.test", "http://httpbin/", STANDARD),
]  # fmt: skip
EVERYONE, SYNCED, ENGINEERING = "Everyone", SYNCED_GROUP_NAME, "Engineering"
# (group, resource name); §6 item 13.
POLICIES = [
    (EVERYONE, "foobar.com"),
    (SYNCED, "**.firez.one"),
    (EVERYONE, "example.com"),
    (EVERYONE, "*.firezone.dev"),
    (SYNCED, "ip6only"),
    (EVERYONE, "Example"),
    (ENGINEERING, "gitlab.mycorp.com"),
    (SYNCED, "MyCorp Network"),
    (SYNCED, "MyCorp Network (IPv6)"),
    (EVERYONE, "**.httpbin"),
    (EVERYONE, "**.httpbin.search.test"),
]
ADMIN_STATIC_GROUPS = (
    "Group:gcp-logging-viewers",
    "Group:gcp-security-admins",
    "Group:gcp-organization-admins",
    "OU:Admins",
    "OU:Product",
    "Group:Engineering",
    "Group:gcp-developers",
)
GATEWAY_IPS = ["189.172.73.153", "164.112.78.62", *(f"164.112.78.{n}" for n in range(63, 73))]
RELAY_IPV6 = ["::1", "::1", "::2", "::3", "::4", "::5"]
CONNLIB_0_7 = "connlib/0.7.412"
KYIV = Context(
    remote_ip_location_region="UA",
    remote_ip_location_city="Kyiv",
    remote_ip_location_lat=50.4333,
    remote_ip_location_lon=30.5167,
)
DEVICE_KINDS = [
    ("iOS", "iOS/12.7 (iPhone) connlib/1.5.0"),
    ("Android", "Android/14 connlib/1.5.0"),
    ("Windows", "Windows/10.0.22631 connlib/1.5.0"),
    ("Ubuntu", "Ubuntu/22.4.0 connlib/1.5.0"),
]
_GATEWAY_NAME_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


# --- public API ---------------------------------------------------------------------------------


@transaction.atomic
def reset() -> None:
    """Delete the seeded accounts (everything in them), the global relay group and the staff user.

    Raw deletes relying on the database's ON DELETE CASCADE: the seeded accounts hold ~100 000
    rows, too many to collect and record one by one. Live sessions of the deleted tokens are
    still told to disconnect.
    """
    accounts = list(
        Account.objects.filter(
            Q(slug__in=[FIREZONE_SLUG, OTHER_SLUG])
            | Q(pk__in=[FIREZONE_ACCOUNT_ID, OTHER_ACCOUNT_ID])
        ).values_list("pk", flat=True)
    )
    relay_groups = list(
        RelayGroup.objects.filter(account__isnull=True, name=GLOBAL_RELAY_GROUP).values_list(
            "pk", flat=True
        )
    )
    token_ids = Token.objects.filter(
        Q(account_id__in=accounts) | Q(relay_group_id__in=relay_groups)
    ).values_list("pk", flat=True)
    for token_id in token_ids:
        changes.disconnect_session(token_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Account._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
            [accounts],
        )
        cursor.execute(
            f"DELETE FROM {RelayGroup._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
            [relay_groups],
        )
    get_user_model().objects.filter(username=STAFF_USERNAME).delete()


@transaction.atomic
def seed(
    *, synced_groups: int = SYNCED_GROUPS, max_clients_per_user: int = MAX_CLIENTS_PER_USER
) -> dict[str, Any]:
    """Create the §6 data set unless it exists; return the sign-in data and device tokens.

    `synced_groups` (10 000 in the original) and `max_clients_per_user` (241) size the bulk
    parts; tests use small numbers.
    """
    User = get_user_model()
    staff, created = User.objects.get_or_create(
        username=STAFF_USERNAME,
        defaults={"email": STAFF_EMAIL, "is_staff": True, "is_superuser": True},
    )
    if created:
        staff.set_password(STAFF_PASSWORD)
        staff.save(update_fields=["password"])
    if Account.objects.filter(slug=FIREZONE_SLUG).exists():
        _extend_expired_tokens()
    else:
        _Builder(synced_groups=synced_groups, max_clients_per_user=max_clients_per_user).build()
    return {
        "staff": {"username": STAFF_USERNAME, "password": STAFF_PASSWORD, "url": "/admin/"},
        "accounts": _accounts_output(),
        "device_tokens": _device_tokens(),
        "api_url": settings.API_EXTERNAL_URL,
        "api_tokens": _api_tokens(),
    }


# --- output -------------------------------------------------------------------------------------


def _login(identifier: str, role: str) -> dict[str, str]:
    return {"provider": "UserPass", "identifier": identifier, "password": PASSWORD, "role": role}


def _accounts_output() -> list[dict[str, Any]]:
    logins = {
        FIREZONE_SLUG: [_login(ADMIN_EMAIL, "admin"), _login(UNPRIVILEGED_EMAIL, "user")],
        OTHER_SLUG: [_login(OTHER_ADMIN_EMAIL, "admin"), _login(OTHER_UNPRIVILEGED_EMAIL, "user")],
    }
    result = []
    for slug, sign_in in logins.items():
        account = Account.objects.filter(slug=slug).first()
        if account is not None:
            result.append(
                {"slug": slug, "id": str(account.pk), "name": account.name, "sign_in": sign_in}
            )
    return result


def _encoded(static: StaticToken, token_type: str) -> str | None:
    token = Token.objects.filter(pk=static.id).values("account_id", "inserted_at").first()
    if token is None:
        return None
    # signed_at = the row's insert time: the same string on every run (it is not verified).
    return tokens.encode(
        static.id,
        static.nonce,
        static.fragment,
        token_type=token_type,
        account_id=token["account_id"],
        signed_at=token["inserted_at"],
    )


def _device_tokens() -> dict[str, str]:
    printed = {
        "client": _encoded(CLIENT_TOKEN, Token.Type.CLIENT),
        "gateway": _encoded(GATEWAY_TOKEN, Token.Type.GATEWAY_GROUP),
        "relay": _encoded(RELAY_TOKEN, Token.Type.RELAY_GROUP),
        "account_relay": _encoded(ACCOUNT_RELAY_TOKEN, Token.Type.RELAY_GROUP),
        "service_account": _encoded(SERVICE_ACCOUNT_TOKEN, Token.Type.CLIENT),
    }
    return {name: value for name, value in printed.items() if value is not None}


def _api_tokens() -> dict[str, str]:
    """Account slug → the encoded bearer token of its seeded API client."""
    printed = {slug: _encoded(static, Token.Type.API_CLIENT) for slug, static in API_TOKENS.items()}
    return {slug: value for slug, value in printed.items() if value is not None}


def _extend_expired_tokens() -> None:
    """Idempotent re-run: give an expired seeded client token a new lifetime."""
    now = timezone.now()
    lifetimes = {
        CLIENT_TOKEN.id: tokens.CLIENT_SESSION_LIFETIME,
        SERVICE_ACCOUNT_TOKEN.id: timedelta(days=365),
        **{static.id: API_TOKEN_LIFETIME for static in API_TOKENS.values()},
    }
    for token in Token.objects.select_for_update().filter(
        pk__in=list(lifetimes), expires_at__lte=now
    ):
        old = changes.row_image(token)
        token.expires_at = now + lifetimes[token.pk]
        token.save(update_fields=["expires_at", "updated_at"])
        changes.updated(old, token)


# --- static ids ---------------------------------------------------------------------------------


def _rekey(instance: Model, new_pk: uuid.UUID, **values: Any) -> None:
    """Give a just-created row its static id (and other static column values).

    Only valid before anything references the row. The recorded insert is rewritten too, so the
    change log names the row by the id it keeps.
    """
    model = type(instance)
    old_pk = instance.pk
    model._default_manager.filter(pk=old_pk).update(id=new_pk, **values)
    table = changes.table_of(model)
    for entry in ChangeLog.objects.filter(table=table, op="insert", data__id=str(old_pk)):
        entry.data = {**(entry.data or {}), "id": str(new_pk)}
        if model is Account:
            entry.account_id = new_pk
        entry.save(update_fields=["data", "account_id"])
    instance.pk = new_pk
    for key, value in values.items():
        setattr(instance, key, value)


def _static_token(issued: IssuedToken, static: StaticToken) -> Token:
    token = issued.token
    _rekey(token, static.id, secret_salt=static.salt, secret_hash=static.hash)
    return Token.objects.get(pk=static.id)


# --- the data set -------------------------------------------------------------------------------


def _copy(model: type[Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Bulk-insert plain tuples with PostgreSQL COPY (no model instances, no change log)."""
    if not rows:
        return
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _public_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(32)).decode("ascii")


class _Builder:
    """Creates §6 in order; `rng` makes every random choice reproducible."""

    def __init__(self, *, synced_groups: int, max_clients_per_user: int) -> None:
        self.rng = random.Random(RANDOM_SEED)
        self.synced_groups = synced_groups
        self.max_clients_per_user = max(2, max_clients_per_user)
        self.now = timezone.now()

    def build(self) -> None:
        firezone, other = self._accounts()
        for account in (firezone, other):
            site = site_create_internet(account=account)
            resource_create_internet(account=account, site=site)
            group_create_everyone(account=account)
        self._firezone(firezone)
        self._other(other)

    def _accounts(self) -> tuple[Account, Account]:
        firezone = account_create(
            name="Firezone Account",
            slug=FIREZONE_SLUG,
            config={"search_domain": "httpbin.search.test"},
            features=ALL_FEATURES,
            limits=FIREZONE_LIMITS,
            metadata={"stripe": FIREZONE_STRIPE},
        )
        _rekey(firezone, FIREZONE_ACCOUNT_ID)
        other = account_create(name="Other Corp Account", slug=OTHER_SLUG)
        _rekey(other, OTHER_ACCOUNT_ID)
        return firezone, other

    # --- other account --------------------------------------------------------------------------

    def _other(self, account: Account) -> None:
        provider_create_system(account=account, name="email", adapter=AuthProvider.Adapter.EMAIL)
        userpass = provider_create_system(
            account=account, name="UserPass", adapter=AuthProvider.Adapter.USERPASS
        )
        for name, actor_type, email in (
            ("Other Unprivileged", Actor.Type.ACCOUNT_USER, OTHER_UNPRIVILEGED_EMAIL),
            ("Other Admin", Actor.Type.ACCOUNT_ADMIN_USER, OTHER_ADMIN_EMAIL),
        ):
            actor = actor_create_system(account=account, name=name, type=actor_type)
            identity = self._userpass(actor, userpass, email)
        # The loop's last actor is the admin.
        self._api_client(Subject.build(actor=actor, identity=identity))

    def _api_client(self, admin_subject: Subject) -> None:
        """The account's API client with its fixed REST API token."""
        api_client = actor_create(
            subject=admin_subject, name=API_CLIENT_NAME, type=Actor.Type.API_CLIENT
        )
        _static_token(
            api_client_token_create(
                subject=admin_subject,
                actor=api_client,
                name="seed",
                expires_at=self.now + API_TOKEN_LIFETIME,
            ),
            API_TOKENS[admin_subject.account.slug],
        )

    @staticmethod
    def _userpass(actor: Actor, provider: AuthProvider, email: str) -> AuthIdentity:
        return identity_create_system(
            actor=actor,
            provider=provider,
            provider_identifier=email,
            password=PASSWORD,
            password_confirmation=PASSWORD,
        )

    # --- firezone account -----------------------------------------------------------------------

    def _firezone(self, account: Account) -> None:
        A = AuthProvider.Adapter
        email = provider_create_system(account=account, name="Email", adapter=A.EMAIL)
        oidc = provider_create_system(
            account=account, name="OIDC", adapter=A.OPENID_CONNECT, adapter_config=OIDC_CONFIG
        )
        provider_create_system(account=account, name="Mock", adapter=A.MOCK)
        userpass = provider_create_system(account=account, name="UserPass", adapter=A.USERPASS)

        def user(name: str, actor_type: str = Actor.Type.ACCOUNT_USER) -> Actor:
            return actor_create_system(account=account, name=name, type=actor_type)

        unprivileged = user("Firezone Unprivileged")
        numbered = [user(f"Firezone Unprivileged {n}") for n in range(1, 11)]
        admin = user("Firezone Admin", Actor.Type.ACCOUNT_ADMIN_USER)
        backup = user("Backup Manager", Actor.Type.SERVICE_ACCOUNT)

        unprivileged_email = identity_create_system(
            actor=unprivileged, provider=email, provider_identifier=UNPRIVILEGED_EMAIL
        )
        unprivileged_userpass = self._userpass(unprivileged, userpass, UNPRIVILEGED_EMAIL)
        _rekey(unprivileged_userpass, UNPRIVILEGED_USERPASS_IDENTITY_ID)
        admin_email = identity_create_system(
            actor=admin, provider=email, provider_identifier=ADMIN_EMAIL
        )
        self._userpass(admin, userpass, ADMIN_EMAIL)
        self._oidc_identity(admin, oidc, ADMIN_EMAIL)

        owners = []
        for n, actor in enumerate(numbered, start=1):
            identity = self._oidc_identity(actor, oidc, f"user-{n}@localhost.local")
            session_token_create(
                identity=identity,
                context=dataclasses.replace(
                    KYIV,
                    type=Token.Type.BROWSER,
                    user_agent="Windows/10.0.22631 seeds/1",
                    remote_ip="172.28.0.100",
                ),
                nonce="n",
            )
            owners.append((actor, identity))
        self._bulk_clients(account, owners)

        unprivileged_session = session_token_create(
            identity=unprivileged_email,
            context=Context(
                type=Token.Type.BROWSER,
                user_agent="iOS/18.1.0 connlib/1.3.5",
                remote_ip="172.28.0.100",
            ),
            nonce="n",
        ).token
        admin_context = Context(
            type=Token.Type.BROWSER,
            user_agent="Mac OS/14.1.2 connlib/1.2.1",
            remote_ip="100.64.100.58",
        )
        session_token_create(identity=admin_email, context=admin_context, nonce="n")
        admin_subject = Subject.build(actor=admin, identity=admin_email, context=admin_context)
        _static_token(
            service_account_token_create(
                subject=admin_subject,
                actor=backup,
                name=f"tok-{_uuid(self.rng)}",
                expires_at=self.now + timedelta(days=365),
            ),
            SERVICE_ACCOUNT_TOKEN,
        )
        self._api_client(admin_subject)

        iphone = self._user_clients(unprivileged, unprivileged_email, admin, admin_email)
        actors = [unprivileged, *numbered, admin, backup]
        synced = self._groups(account, oidc, actors, unprivileged, admin, admin_subject)
        self._relays(admin_subject)
        site, gateways = self._site(admin_subject)
        resources = self._resources(admin_subject, site)
        groups = {
            EVERYONE: ActorGroup.objects.get(account=account, type=ActorGroup.Type.MANAGED),
            SYNCED: synced,
            ENGINEERING: ActorGroup.objects.get(
                account=account, name=ENGINEERING, provider__isnull=True
            ),
        }
        for group_name, resource_name in POLICIES:
            policy_create(
                subject=admin_subject,
                actor_group_id=groups[group_name].pk,
                resource_id=resources[resource_name].pk,
                description=f"{group_name} → {resource_name}",
            )

        _static_token(
            session_token_create(
                identity=unprivileged_email,
                context=Context(
                    type=Token.Type.CLIENT,
                    user_agent="iOS/18.1.0 connlib/1.3.5",
                    remote_ip="172.28.0.100",
                ),
                nonce=CLIENT_TOKEN.nonce,
            ),
            CLIENT_TOKEN,
        )

        # The flow: expires with the unprivileged user's browser session (§6 item 15).
        flow_subject = Subject.build(
            actor=unprivileged,
            identity=unprivileged_email,
            token_id=unprivileged_session.pk,
            expires_at=unprivileged_session.expires_at,
            context=Context(
                type=Token.Type.CLIENT,
                user_agent=iphone.last_seen_user_agent,
                remote_ip=iphone.last_seen_remote_ip,
            ),
        )
        flow_authorize(
            subject=flow_subject,
            client=iphone,
            resource=resources["MyCorp Network"],
            gateway=gateways[0],
        )

    def _oidc_identity(self, actor: Actor, provider: AuthProvider, email: str) -> AuthIdentity:
        # An identity the IdP "created" at sign-in (§6 item 5's rewrite).
        return identity_create_system(
            actor=actor,
            provider=provider,
            provider_identifier=email,
            provider_state={"claims": {"email": email, "group": "users"}},
            by_provider=True,
        )

    def _user_clients(
        self,
        unprivileged: Actor,
        unprivileged_identity: AuthIdentity,
        admin: Actor,
        admin_identity: AuthIdentity,
    ) -> Client:
        """§6 item 8; returns "FZ User iPhone"."""
        rng = self.rng
        created = []
        for name, user_agent, hardware in (
            (
                "FZ User iPhone",
                f"iOS/12.7 (iPhone) {CONNLIB_0_7}",
                {"identifier_for_vendor": f"APPL-{_uuid(rng)}"},
            ),
            (
                "FZ User Android",
                f"Android/14 {CONNLIB_0_7}",
                {"identifier_for_vendor": f"GOOG-{_uuid(rng)}"},
            ),
            (
                "FZ User Surface",
                f"Windows/10.0.22631 {CONNLIB_0_7}",
                {"device_uuid": f"WIN-{_uuid(rng)}"},
            ),
            (
                "FZ User Rendering Station",
                f"Ubuntu/22.4.0 {CONNLIB_0_7}",
                {"device_uuid": f"UB-{_uuid(rng)}"},
            ),
        ):
            subject = Subject.build(
                actor=unprivileged,
                identity=unprivileged_identity,
                context=Context(type="client", user_agent=user_agent, remote_ip="172.28.0.100"),
            )
            created.append(
                client_upsert(
                    subject=subject,
                    external_id=str(_uuid(rng)),
                    name=name,
                    public_key=_public_key(rng),
                    **hardware,
                )
            )
        admin_subject = Subject.build(
            actor=admin,
            identity=admin_identity,
            context=Context(
                type="client", user_agent=f"Mac OS/14.5 {CONNLIB_0_7}", remote_ip="100.64.100.58"
            ),
        )
        client_upsert(
            subject=admin_subject,
            external_id=str(_uuid(rng)),
            name="FZ Admin Laptop",
            public_key=_public_key(rng),
            device_serial="FVFHF246Q72Z",
            device_uuid=str(_uuid(rng)),
        )
        return created[0]

    def _addresses(self, account: Account, type: str, count: int) -> list[str]:
        """`count` free tunnel addresses of the account, picked by the seeded rng and inserted
        (the bulk twin of `address_allocate`: the seed runs alone, no locks needed)."""
        network = ipaddress.ip_network(CIDRS[type])
        taken = set(
            NetworkAddress.objects.filter(account=account, type=type).values_list(
                "address", flat=True
            )
        )
        last = network.num_addresses - 2
        picked: list[str] = []
        for offset in self.rng.sample(range(2, last + 1), count + len(taken)):
            address = str(network.network_address + offset)
            if address not in taken:
                picked.append(address)
                if len(picked) == count:
                    break
        NetworkAddress.objects.bulk_create(
            [NetworkAddress(account=account, type=type, address=a) for a in picked],
            batch_size=2000,
        )
        return picked

    def _bulk_clients(self, account: Account, owners: list[tuple[Actor, AuthIdentity]]) -> None:
        """2..max_clients_per_user clients for each "Firezone Unprivileged N" (§6 item 5)."""
        rng = self.rng
        rows = []
        for actor, identity in owners:
            for i in range(1, rng.randint(2, self.max_clients_per_user) + 1):
                kind, user_agent = rng.choice(DEVICE_KINDS)
                rows.append(
                    Client(
                        external_id=str(_uuid(rng)),
                        name=f"My {kind} {i}",
                        public_key=_public_key(rng),
                        last_seen_user_agent=user_agent,
                        last_seen_remote_ip="172.28.0.100",
                        last_seen_version=user_agent.rsplit("/", 1)[1],
                        last_seen_at=self.now,
                        actor=actor,
                        identity=identity,
                        account=account,
                    )
                )
        ipv4 = self._addresses(account, "ipv4", len(rows))
        ipv6 = self._addresses(account, "ipv6", len(rows))
        for row, v4, v6 in zip(rows, ipv4, ipv6, strict=True):
            row.ipv4, row.ipv6 = v4, v6
        Client.objects.bulk_create(rows, batch_size=2000)

    def _groups(
        self,
        account: Account,
        oidc: AuthProvider,
        actors: list[Actor],
        unprivileged: Actor,
        admin: Actor,
        admin_subject: Subject,
    ) -> ActorGroup:
        """§6 item 9; returns the group converted to a synced one."""
        rng = self.rng
        trail = json.dumps(PROVIDER_TRAIL["created_by_subject"])
        groups = []
        memberships: list[tuple[Any, ...]] = []
        for i in range(1, self.synced_groups + 1):
            group_id = _uuid(rng)
            name = f"{rng.choice(ADJECTIVES)}_{rng.choice(NOUNS)}-{i}"
            groups.append(
                (
                    group_id,
                    name,
                    ActorGroup.Type.STATIC.value,
                    oidc.pk,
                    str(_uuid(rng)),
                    self.now,
                    PROVIDER_TRAIL["created_by"],
                    trail,
                    account.pk,
                    self.now,
                    self.now,
                )
            )
            memberships.extend(
                (_uuid(rng), actor.pk, group_id, account.pk, self.now)
                for actor in rng.sample(actors, rng.randint(1, len(actors)))
            )
        # COPY: ~80 000 rows in well under a second (bulk_create needs several).
        _copy(
            ActorGroup,
            (
                "id",
                "name",
                "type",
                "provider_id",
                "provider_identifier",
                "last_synced_at",
                "created_by",
                "created_by_subject",
                "account_id",
                "inserted_at",
                "updated_at",
            ),
            groups,
        )
        _copy(
            ActorGroupMembership,
            ("id", "actor_id", "group_id", "account_id", "last_synced_at"),
            memberships,
        )

        group_create(subject=admin_subject, name=ENGINEERING, members=[admin])
        group_create(subject=admin_subject, name="Finance", members=[unprivileged])
        synced = group_create(subject=admin_subject, name=SYNCED, members=[admin, unprivileged])
        old = changes.row_image(synced)
        synced.provider = oidc
        synced.provider_identifier = "dummy_oidc_group_id"
        synced.last_synced_at = self.now
        for key, value in PROVIDER_TRAIL.items():
            setattr(synced, key, value)
        synced.save()
        changes.updated(old, synced)
        old = changes.row_image(oidc)
        oidc.last_synced_at = self.now
        oidc.save(update_fields=["last_synced_at", "updated_at"])
        changes.updated(old, oidc)
        for name in ADMIN_STATIC_GROUPS:
            group_create(subject=admin_subject, name=name, members=[admin])
        return synced

    def _relays(self, admin_subject: Subject) -> None:
        """§6 item 10: the global group and the admin's self-hosted group, six relays each."""
        global_group = relay_group_create_global(name=GLOBAL_RELAY_GROUP)
        global_token = _static_token(
            relay_group_token_create_global(group=global_group), RELAY_TOKEN
        )
        account_group = relay_group_create(subject=admin_subject, name=ACCOUNT_RELAY_GROUP)
        # §8.15 fixed: the token belongs to the account's own group.
        account_token = _static_token(
            relay_group_token_create(subject=admin_subject, group=account_group),
            ACCOUNT_RELAY_TOKEN,
        )
        for group, token, prefix in (
            (global_group, global_token, "189.172.72"),
            (account_group, account_token, "189.172.73"),
        ):
            for n, ipv6 in enumerate(RELAY_IPV6):
                ipv4 = f"{prefix}.{111 + n}"
                relay_upsert(
                    group=group,
                    token=token,
                    ipv4=ipv4,
                    ipv6=ipv6,
                    context=Context(
                        type=Token.Type.RELAY_GROUP,
                        user_agent=f"Ubuntu/14.04 {CONNLIB_0_7}",
                        remote_ip=ipv4,
                    ),
                )

    def _site(self, admin_subject: Subject) -> tuple[Site, list[Gateway]]:
        """§6 item 11: the admin's site, its token and twelve gateways."""
        site = site_create(subject=admin_subject, name=SITE_NAME)
        token = _static_token(site_token_create(subject=admin_subject, site=site), GATEWAY_TOKEN)
        gateways = []
        for remote_ip in GATEWAY_IPS:
            suffix = "".join(self.rng.choice(_GATEWAY_NAME_ALPHABET) for _ in range(5))
            gateways.append(
                gateway_upsert(
                    site=site,
                    token=token,
                    external_id=str(_uuid(self.rng)),
                    name=f"gw-{suffix}",
                    public_key=_public_key(self.rng),
                    context=Context(
                        type=Token.Type.GATEWAY_GROUP,
                        user_agent=f"iOS/12.7 (iPhone) {CONNLIB_0_7}",
                        remote_ip=remote_ip,
                    ),
                )
            )
        return site, gateways

    def _resources(self, admin_subject: Subject, site: Site) -> dict[str, Resource]:
        """§6 item 12, all in the admin's site (DNS resources default to `dual`)."""
        return {
            name: resource_create(
                subject=admin_subject,
                name=name,
                type=resource_type,
                address=address,
                address_description=description,
                filters=filters,
                connections=[site],
            )
            for name, resource_type, address, description, filters in RESOURCES
        }
