"""The connect step of the three device sockets (protocol.md §2): request metadata, token
authentication, device upsert, and the exact HTTP rejections devices understand (§2.6).

Everything here is synchronous (ORM); consumers call it through `database_sync_to_async`.

* The request metadata (`ConnectContext`, §2.2) comes from `accounts.request`.
* `authenticate_client / _gateway / _relay(params, ctx)` — token check and upsert through the
  existing services; refusals raise `ConnectRejected(401 "Missing token" | 401 "Invalid token" |
  422 "Invalid or missing connection parameters: …")`.
* Rate limiting (`record_connect_failure`): devices treat *every* 4xx as fatal (§1.10), so a
  throttled device must never see 429 nor a different answer. Failed authentications (401) are
  counted per remote IP in the cache (Redis, shared by all processes); past
  `CONNECT_FREE_FAILURES` in a `CONNECT_FAILURE_WINDOW` the *same* 401 is answered only after a
  growing delay (at most `CONNECT_MAX_DELAY`, kept below daphne's 5 s handshake timeout). Valid
  tokens are never delayed, so a noisy neighbour behind the same NAT cannot sign others out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.cache import cache

from accounts.auth import Context, Subject
from accounts.models import Account, Token
from accounts.request import ConnectContext
from accounts.services.tokens import authenticate
from accounts.validation import MSG_BLANK
from firezone.errors import DomainError, NotFound, Unauthorized, ValidationFailed
from firezone.phoenix.rejection import ConnectRejected
from gateways.models import Client, Gateway, Relay, RelayGroup, Site
from gateways.services.clients import client_upsert
from gateways.services.gateways import gateway_authenticate, gateway_upsert
from gateways.services.relays import DEFAULT_RELAY_PORT, relay_authenticate, relay_upsert

logger = logging.getLogger(__name__)
T = TypeVar("T")
G = TypeVar("G", Site, RelayGroup)

MISSING_TOKEN = "Missing token"
INVALID_TOKEN = "Invalid token"
INVALID_PARAMS = "Invalid or missing connection parameters: "
# A disabled account's clients and gateways are refused until it is enabled again (billing: a
# paused subscription). 503, not the original's (never sent) 403: connlib treats every 4xx on the
# upgrade as fatal (clients sign out, gateways exit) but retries a 5xx with back-off, so the
# devices come back by themselves once the account is enabled (protocol.md §1.10, §9 item 6).
ACCOUNT_DISABLED = "The account is disabled"

CONNECT_FAILURE_WINDOW = 60  # seconds a failure is remembered
CONNECT_FREE_FAILURES = 10  # failures per window answered without delay
CONNECT_DELAY_STEP = 0.2  # extra seconds per failure beyond the free ones
CONNECT_MAX_DELAY = 2.0  # below daphne's websocket_connect_timeout (5 s)


# --- rejections ---------------------------------------------------------------------------------


def invalid_params_body(errors: Mapping[str, Iterable[str]]) -> str:
    """The 422 body: one `"<field>: <msg1>; <msg2>\\n"` line per field, fields sorted (Ecto's
    error map with atom keys is ordered that way)."""
    lines = "".join(f"{field}: {'; '.join(errors[field])}\n" for field in sorted(errors))
    return INVALID_PARAMS + lines


def _invalid_token() -> ConnectRejected:
    return ConnectRejected(401, INVALID_TOKEN)


def _token(params: Mapping[str, str]) -> str:
    token = params.get("token")
    if token is None:
        raise ConnectRejected(401, MISSING_TOKEN)
    return token


def _require_user_agent(ctx: ConnectContext) -> None:
    # The original fails the token's last-seen update first, with only this error.
    if not (ctx.user_agent or "").strip():
        raise ConnectRejected(422, invalid_params_body({"last_seen_user_agent": [MSG_BLANK]}))


def _optional(params: Mapping[str, str], key: str) -> str | None:
    """An optional text parameter; blank counts as absent (Ecto casts "" to nil)."""
    value = params.get(key)
    return value if value is not None and value.strip() else None


def _require_active_account(account: Account) -> None:
    # Loaded with the token (no query of its own): the connect's query budget is fixed.
    if account.disabled_at is not None:
        raise ConnectRejected(503, ACCOUNT_DISABLED)


def _rejection(exc: DomainError) -> ConnectRejected:
    if isinstance(exc, ValidationFailed):
        return ConnectRejected(422, invalid_params_body(exc.errors))
    if isinstance(exc, Unauthorized | NotFound):
        return _invalid_token()
    raise exc


# --- the three device kinds ---------------------------------------------------------------------


def authenticate_client(params: Mapping[str, str], ctx: ConnectContext) -> tuple[Subject, Client]:
    """`/client/websocket` (§2.3): a `client` token of an active actor (and identity) → the
    subject of the session and the upserted client."""
    encoded = _token(params)
    try:
        subject = authenticate(encoded, context=ctx.auth_context(Token.Type.CLIENT))
    except Unauthorized:
        raise _invalid_token() from None
    _require_user_agent(ctx)
    _require_active_account(subject.account)
    try:
        client = client_upsert(
            subject=subject,
            external_id=params.get("external_id") or "",
            name=_optional(params, "name"),
            public_key=params.get("public_key") or "",
            device_serial=_optional(params, "device_serial"),
            device_uuid=_optional(params, "device_uuid"),
            identifier_for_vendor=_optional(params, "identifier_for_vendor"),
            firebase_installation_id=_optional(params, "firebase_installation_id"),
        )
    except (ValidationFailed, Unauthorized, NotFound) as exc:
        raise _rejection(exc) from None
    return subject, client


def _authenticate_group(
    params: Mapping[str, str],
    ctx: ConnectContext,
    token_type: str,
    authenticate_token: Callable[..., tuple[G, Token]],
) -> tuple[G, Token, Context]:
    """A site's or relay group's token → the group, the token and the context its device's
    upsert takes; a device without a User-Agent is refused after the token is checked."""
    encoded = _token(params)
    context = ctx.auth_context(token_type)
    try:
        group, token = authenticate_token(encoded, context=context)
    except Unauthorized:
        raise _invalid_token() from None
    _require_user_agent(ctx)
    return group, token, context


def authenticate_gateway(
    params: Mapping[str, str], ctx: ConnectContext
) -> tuple[Token, Site, Gateway]:
    """`/gateway/websocket` (§2.4): a site token → the token, its site and the upserted gateway."""
    site, token, context = _authenticate_group(
        params, ctx, Token.Type.GATEWAY_GROUP, gateway_authenticate
    )
    _require_active_account(site.account)
    try:
        gateway = gateway_upsert(
            site=site,
            token=token,
            external_id=params.get("external_id") or "",
            name=_optional(params, "name"),
            public_key=params.get("public_key") or "",
            context=context,
        )
    except (ValidationFailed, Unauthorized, NotFound) as exc:
        raise _rejection(exc) from None
    return token, site, gateway


def authenticate_relay(
    params: Mapping[str, str], ctx: ConnectContext
) -> tuple[Token, RelayGroup, Relay]:
    """`/relay/websocket` (§2.5): a relay group token (global groups have no account) → the
    token, its group and the upserted relay."""
    group, token, context = _authenticate_group(
        params, ctx, Token.Type.RELAY_GROUP, relay_authenticate
    )
    port: Any = params.get("port")
    if port is None or not port.strip():
        port = DEFAULT_RELAY_PORT
    try:
        relay = relay_upsert(
            group=group,
            token=token,
            ipv4=_optional(params, "ipv4"),
            ipv6=_optional(params, "ipv6"),
            port=port,
            name=_optional(params, "name"),
            context=context,
        )
    except (ValidationFailed, Unauthorized, NotFound) as exc:
        raise _rejection(exc) from None
    return token, group, relay


# --- rate limiting ------------------------------------------------------------------------------


def record_connect_failure(rejected: ConnectRejected, ctx: ConnectContext) -> float:
    """Count a refused connect of this remote IP; the seconds to wait before answering it.

    Only authentication failures (401) count: they are what a token-guessing client produces.
    A cache failure never blocks a connect (no delay).
    """
    if rejected.status != 401 or not ctx.remote_ip:
        return 0.0
    key = f"socket-connect-failures:{ctx.remote_ip}"
    try:
        cache.add(key, 0, timeout=CONNECT_FAILURE_WINDOW)
        failures = cache.incr(key)
    except Exception:  # the cache is an optimisation here, not a gate
        logger.warning("connect failure counter unavailable", exc_info=True)
        return 0.0
    excess = failures - CONNECT_FREE_FAILURES
    if excess <= 0:
        return 0.0
    if excess == 1:
        logger.warning("slowing down connects from %s (%d failures)", ctx.remote_ip, failures)
    return min(CONNECT_MAX_DELAY, CONNECT_DELAY_STEP * excess)


def throttled(
    authenticate_fn: Callable[..., T], params: Mapping[str, str], ctx: ConnectContext
) -> T:
    """Run an `authenticate_*`; a refusal carries the seconds to wait before answering it
    (`rejected.delay`), which the consumer sleeps off its event loop."""
    # A NUL in a header the connect stores (User-Agent, geo headers: the token's and device's
    # last-seen columns) is refused like daphne refuses it itself, 400 "upgrade failed" (§2.6),
    # before the token is touched: PostgreSQL text cannot store it (another ASGI server may
    # pass it on), and a 500 would be retried forever.
    if any("\x00" in (value or "") for value in (ctx.user_agent, ctx.region, ctx.city)):
        raise ConnectRejected(400, "")
    try:
        return authenticate_fn(params, ctx)
    except ConnectRejected as rejected:
        rejected.delay = record_connect_failure(rejected, ctx)
        raise
