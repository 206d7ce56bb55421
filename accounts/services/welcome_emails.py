"""The "Welcome to Firezone" invitation an admin sends to a user (portal.md §3.15,
billing_sync_jobs.md §4.2 "New user welcome"): who invited them, to which account, where to get
the clients and which account slug to type into them.

Not the sign-up email (resources.services.sign_up): that one welcomes a new account's owner. The
per-identity rate limit of the manual "Send Welcome Email" button is the web layer's business
(like the portal's other rate limits); the automatic email sent when an admin adds an email
identity is not limited.
"""

from __future__ import annotations

from django.conf import settings
from django.core import mail
from django.urls import reverse

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import AuthIdentity
from firezone.errors import Refused
from firezone.lookup import get_or_not_found
from firezone.mail import templated_email

WELCOME_SUBJECT = "Welcome to Firezone"
CLIENT_DOWNLOADS = (
    ("macOS", "https://www.firezone.dev/kb/client-apps/macos-client?utm_source=product"),
    ("iOS", "https://www.firezone.dev/kb/client-apps/ios-client?utm_source=product"),
    ("Windows", "https://www.firezone.dev/kb/client-apps/windows-gui-client?utm_source=product"),
    ("Android", "https://www.firezone.dev/kb/client-apps/android-client?utm_source=product"),
    ("Linux", "https://www.firezone.dev/kb/client-apps/linux-gui-client?utm_source=product"),
)


def identity_welcome_address(identity: AuthIdentity) -> str | None:
    """Where the invitation goes: the identity's email (the IdP's userinfo email when it has
    one), None for identities without an email (usernames, IdP subjects)."""
    userinfo = (identity.provider_state or {}).get("userinfo") or {}
    email = userinfo.get("email") if isinstance(userinfo, dict) else None
    return email or identity.email or None


def welcome_email_build(*, subject: Subject, identity: AuthIdentity, to: str) -> mail.EmailMessage:
    account = subject.account
    base = settings.EXTERNAL_URL.rstrip("/")
    data = {
        "inviter": subject.actor.name,
        "account": account,
        "account_segment": account.slug or str(account.pk),
        "sign_in_url": base + reverse("sign_in", kwargs={"account": account.slug or account.pk}),
        "email": to,
        "downloads": CLIENT_DOWNLOADS,
    }
    message = templated_email(
        subject=WELCOME_SUBJECT, template="sign_in_invite", data=data, to=[to]
    )
    return message


def identity_welcome_email_send(*, subject: Subject, identity: AuthIdentity) -> str:
    """Send the invitation for an identity of the subject's account; returns the address.
    Refused when the identity has no email; delivery errors propagate."""
    ensure_permissions(subject, P.IDENTITY_MANAGE)
    identity = get_or_not_found(AuthIdentity, identity, account_id=subject.account_id)
    to = identity_welcome_address(identity)
    if not to:
        raise Refused("This identity has no email address.", code="no_email")
    welcome_email_build(subject=subject, identity=identity, to=to).send(fail_silently=False)
    return to
