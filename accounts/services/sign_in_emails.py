"""The "Firezone sign in token" email (portal.md §3.6 step 2): plain text and HTML alternatives
through Django's email backend (console in development, SMTP in production)."""

from __future__ import annotations

from datetime import UTC
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context
from accounts.models import Account, AuthIdentity, AuthProvider
from firezone.mail import templated_email

SIGN_IN_TOKEN_SUBJECT = "Firezone sign in token"


def sign_in_link(
    *, account: Account, provider: AuthProvider, identity: AuthIdentity, code: str, params: dict
) -> str:
    """The magic link: `{EXTERNAL_URL}/<slug>/sign_in/providers/<id>/verify_sign_in_token?...`."""
    query = urlencode({"identity_id": str(identity.pk), "secret": code, **params})
    base = settings.EXTERNAL_URL.rstrip("/")
    path = reverse(
        "verify_sign_in_token",
        kwargs={"account": account.slug or str(account.pk), "provider_id": str(provider.pk)},
    )
    return f"{base}{path}?{query}"


def sign_in_token_email_send(
    *,
    account: Account,
    provider: AuthProvider,
    identity: AuthIdentity,
    code: str,
    params: dict,
    context: Context,
) -> None:
    """Send the code and magic link to the identity's email address."""
    minutes = int(tokens.EMAIL_TOKEN_LIFETIME.total_seconds() // 60)
    data = {
        "account": account,
        "code": code,
        "link": sign_in_link(
            account=account, provider=provider, identity=identity, code=code, params=params
        ),
        "minutes": minutes,
        "time": timezone.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        "remote_ip": context.remote_ip or "unknown",
        "user_agent": context.user_agent or "unknown",
    }
    message = templated_email(
        subject=SIGN_IN_TOKEN_SUBJECT,
        template="sign_in_token",
        data=data,
        to=[identity.email or identity.provider_identifier],
    )
    message.send()
