"""Browser sessions of the portal (portal.md §1.1, §3.2, §3.13).

One Django session per browser (server-side rows, cookie `_firezone_key`, 4 h sliding) holds
`sessions`: a list of `[context_type, account_id, encoded_token]`, at most one per account and
at most `MAX_SESSIONS` in all (oldest dropped), so a browser can be signed in to several
accounts at once. Only browser tokens are ever stored; device-client tokens go to the app.

Every request re-authenticates the stored token through the domain (`authenticate`): a token
that was deleted (sign-out elsewhere, revocation, identity or actor deleted/disabled) or has
expired, or that belongs to another User-Agent, no longer authenticates, and its entry is
dropped — the browser is signed out on its next request. A successful check marks the session
modified so its cookie and row expiry slide by another 4 hours.

Views get the account from the URL through `account_from_path` (id or slug, 404 otherwise) and
the subject through `fetch_subject`; `admin_required` and `signed_out_only` wrap both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from accounts.auth import Context, Subject
from accounts.models import Account
from accounts.request import connect_context
from accounts.selectors.accounts import account_get_by_id_or_slug
from accounts.services.tokens import authenticate
from accounts.sign_in.params import SignInParams
from firezone.error_views import render_not_found
from firezone.errors import DomainError, NotFound
from firezone.web.request import AccountRequest, PortalRequest
from firezone.web.tables import TableReset

SESSIONS_KEY = "sessions"
MAX_SESSIONS = 6
USER_AGENT_MAX_LENGTH = 255  # the token row's column; creation and check must agree

MSG_SIGN_IN_REQUIRED = "You must sign in to access this page."

# First path segments that belong to the portal itself, never to an account (also refused as
# account slugs, see accounts.validation.RESERVED_SLUGS).
RESERVED_PATHS = frozenset(
    """
    admin static assets images favicon.ico site.webmanifest browser healthz metrics sign_up try dev
    error client gateway relay live api
    """.split()  # noqa: SIM905 (a word list reads better than a literal)
)

_META_HEADERS = (
    ("HTTP_X_FORWARDED_FOR", b"x-forwarded-for"),
    ("HTTP_X_GEO_LOCATION_REGION", b"x-geo-location-region"),
    ("HTTP_X_GEO_LOCATION_CITY", b"x-geo-location-city"),
    ("HTTP_X_GEO_LOCATION_COORDINATES", b"x-geo-location-coordinates"),
)


# --- accounts in the URL -------------------------------------------------------------------------


def account_from_path(id_or_slug: str) -> Account:
    """The account named by the first path segment (UUID or slug, any case); Http404 for
    anything else, including the portal's reserved paths."""
    if not isinstance(id_or_slug, str) or id_or_slug.lower() in RESERVED_PATHS:
        raise Http404("unknown account")
    try:
        return account_get_by_id_or_slug(id_or_slug)
    except DomainError as exc:  # NotFound, or ValidationFailed for bad characters
        raise Http404("unknown account") from exc


def account_path(account: Account) -> str:
    """The account's URL segment: its slug when it has one, else its id (portal.md conventions)."""
    return account.slug or str(account.pk)


def safe_redirect_to(account: Account, redirect_to: str | None) -> str | None:
    """`redirect_to` if it stays inside this account: exactly `/<id or slug>` or below
    `/<id or slug>/` (§3.3 with the §9 item 11 fix: `/acme` does not admit `/acmecorp/...`)."""
    if not redirect_to or not redirect_to.startswith("/") or redirect_to.startswith("//"):
        return None
    if "\\" in redirect_to or any(ord(ch) < 0x20 for ch in redirect_to):
        return None
    if not url_has_allowed_host_and_scheme(redirect_to, allowed_hosts=None):
        return None
    path = redirect_to.split("?", 1)[0].split("#", 1)[0]
    for prefix in {str(account.pk), account.slug or str(account.pk)}:
        base = f"/{prefix}"
        if path.lower() == base.lower() or path.lower().startswith(base.lower() + "/"):
            return redirect_to
    return None


def post_sign_in_url(account: Account, params: SignInParams) -> str:
    """Where a signed-in admin goes: an in-account `redirect_to`, else the Sites page (§3.9)."""
    return safe_redirect_to(account, params.redirect_to) or reverse(
        "sites", kwargs={"account": account_path(account)}
    )


# --- request context -----------------------------------------------------------------------------


def _header_bytes(value: str) -> bytes:
    return value.encode("latin-1", errors="replace")


def request_context(request: HttpRequest, type: str) -> Context:
    """Where the request comes from (UA, IP through trusted proxies, load balancer geo
    headers), the same way the device sockets read it (gateways.connect)."""
    meta = request.META
    headers: list[tuple[bytes, bytes]] = []
    user_agent = meta.get("HTTP_USER_AGENT")
    if user_agent:
        headers.append((b"user-agent", _header_bytes(user_agent[:USER_AGENT_MAX_LENGTH])))
    for key, name in _META_HEADERS:
        if meta.get(key):
            headers.append((name, _header_bytes(meta[key])))
    peer = meta.get("REMOTE_ADDR") or None
    scope = {"headers": headers, "client": (peer, 0) if peer else None}
    return connect_context(scope).auth_context(type)


# --- stored sessions -----------------------------------------------------------------------------


def _entries(request: HttpRequest) -> list[list[str]]:
    stored = request.session.get(SESSIONS_KEY)
    if not isinstance(stored, list):
        return []
    return [
        list(entry)
        for entry in stored
        if isinstance(entry, list | tuple)
        and len(entry) == 3
        and all(isinstance(part, str) for part in entry)
    ]


def session_entries(request: HttpRequest) -> list[tuple[str, str, str]]:
    """`(context_type, account_id, encoded_token)` of every stored session, oldest first."""
    return [(t, a, e) for t, a, e in _entries(request)]


def signed_in_account_ids(request: HttpRequest) -> set[str]:
    """Accounts this browser holds a (not yet re-checked) browser session for."""
    return {a for t, a, _ in session_entries(request) if t == "browser"}


def store_session(request: HttpRequest, account: Account, encoded: str) -> None:
    """Keep a browser token for `account`, replacing this account's previous one and dropping
    the oldest entries beyond `MAX_SESSIONS`. Call after `request.session.cycle_key()`."""
    account_id = str(account.pk)
    entries = [e for e in _entries(request) if e[1] != account_id]
    entries.append(["browser", account_id, encoded])
    request.session[SESSIONS_KEY] = entries[-MAX_SESSIONS:]
    _subject_cache(request).pop(("browser", account_id), None)


def _subject_cache(request: HttpRequest) -> dict[tuple[str, str], Subject | None]:
    cache = getattr(request, "_fz_subjects", None)
    if cache is None:
        cache = {}
        request._fz_subjects = cache  # type: ignore[attr-defined]  # a per-request cache
    return cache


def fetch_subject(
    request: HttpRequest, account: Account, *, type: str | None = None, slide: bool = True
) -> Subject | None:
    """The subject of this browser's stored session for `account`, or None (§3.2 `fetch_subject`).

    The context type comes from the request's sign-in params (`as=client` → client, which is
    never stored, so None) unless `type` is given. A token that no longer authenticates is
    removed from the session; a good one slides the session's expiry (unless `slide=False`:
    background checks must not keep an idle session alive). Cached per request.
    """
    if type is None:
        type = SignInParams.from_request(request).context_type
    account_id = str(account.pk)
    cache = _subject_cache(request)
    if (type, account_id) in cache:
        return cache[(type, account_id)]
    subject = None
    for entry_type, entry_account, encoded in session_entries(request):
        if entry_type != type or entry_account != account_id:
            continue
        try:
            found = authenticate(encoded, context=request_context(request, type))
        except DomainError:
            found = None
        if found is not None and str(found.account_id) == account_id:
            subject = found
            if slide:
                request.session.modified = True  # re-issue the cookie: 4 h sliding
        else:
            request.session[SESSIONS_KEY] = [
                e for e in _entries(request) if not (e[0] == type and e[1] == account_id)
            ]
        break
    cache[(type, account_id)] = subject
    return subject


# --- decorators ----------------------------------------------------------------------------------

View = Callable[..., HttpResponse]


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    # htmx requests follow redirects inside the swap; ask for a full page load instead.
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def not_found(request: HttpRequest) -> HttpResponse:
    """The standard 404 page (or its JSON variant), whatever DEBUG says."""

    return render_not_found(request)


def admin_required(view: View) -> View:
    """Admin-only pages under `/<account>/...` (§1.1). The wrapped view is called as
    `view(request, *args, account=<Account>, **kwargs)` with `request.subject` and
    `request.account` set.

    No (valid) browser session: flash "You must sign in to access this page." and redirect to
    `/<account>?redirect_to=<path>` (GET) or `/<account>` (other methods). A non-admin session:
    the standard 404, URL unchanged. Unknown account: 404.
    """

    @functools.wraps(view)
    def wrapper(request: PortalRequest, *args: Any, account: str, **kwargs: Any) -> HttpResponse:
        found = account_from_path(account)
        request.account = found
        subject = fetch_subject(request, found, type="browser")
        if subject is None:
            messages.error(request, MSG_SIGN_IN_REQUIRED)
            target = reverse("sign_in", kwargs={"account": account})
            if request.method == "GET":
                target += "?" + urlencode({"redirect_to": request.get_full_path()})
            return _redirect(request, target)
        if not subject.actor.is_admin:
            return not_found(request)
        request.subject = subject
        try:
            return view(request, *args, account=found, **kwargs)
        except NotFound:
            # Unknown ids, other accounts' rows and malformed ids all look the same (§1.5).
            return not_found(request)
        except TableReset as reset:
            messages.error(request, reset.message)
            return _redirect(request, reset.url)

    return wrapper


def signed_out_only(view: View) -> View:
    """Sign-in pages (§1.1): with a valid session for this account (of the request's context
    type) go straight to the post-sign-in location. The wrapped view is called as
    `view(request, *args, account=<Account>, **kwargs)` with `request.account` set."""

    @functools.wraps(view)
    def wrapper(request: PortalRequest, *args: Any, account: str, **kwargs: Any) -> HttpResponse:
        found = account_from_path(account)
        request.account = found
        params = SignInParams.from_request(request)
        subject = fetch_subject(request, found, type=params.context_type)
        if subject is not None:
            request.subject = subject
            return _redirect(request, post_sign_in_url(found, params))
        return view(request, *args, account=found, **kwargs)

    return wrapper


def with_account(view: View) -> View:
    """Public pages under `/<account>/...` ("Any" access): resolve the account (404 if
    unknown) and call `view(request, *args, account=<Account>, **kwargs)`."""

    @functools.wraps(view)
    def wrapper(request: AccountRequest, *args: Any, account: str, **kwargs: Any) -> HttpResponse:
        found = account_from_path(account)
        request.account = found
        return view(request, *args, account=found, **kwargs)

    return wrapper
