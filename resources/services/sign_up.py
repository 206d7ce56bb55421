"""Self-service sign-up from the portal (portal.md §3.14).

`account_sign_up` provisions the account (resources.services.provisioning) and sends the
"Welcome to Firezone" email in the same transaction: the email is sent *before* the commit, so
a failed delivery raises and rolls the whole sign-up back, and the post-provision (billing)
hooks never run for it. The reverse case — the email went out but the commit then failed — is
the one we accept: a stray welcome email is harmless, an account nobody was told about is not.

The per-address rate limit of welcome emails is checked by the web layer
(accounts.views.sign_up) before this is called, with the portal's other rate limits.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.auth import Context
from firezone.errors import Refused, ValidationFailed
from firezone.mail import templated_email
from resources.services.provisioning import Provisioned, account_provision

logger = logging.getLogger(__name__)

MSG_DISABLED = "Sign-ups are currently disabled."
MSG_DOMAIN_NOT_ALLOWED = "this email domain is not allowed at this time"
MSG_DELIVERY_FAILED = "We were unable to send you an email. Please try again later."

WELCOME_SUBJECT = "Welcome to Firezone"


def sign_up_enabled() -> bool:
    return bool(settings.FEATURE_SIGN_UP)


def email_domain_allowed(email: str) -> bool:
    """True when no allow-list is configured or the email's domain is in it (case-insensitive)."""
    allowed = {d.lower() for d in settings.SIGN_UP_EMAIL_DOMAINS}
    if not allowed:
        return True
    return email.rpartition("@")[2].strip().lower() in allowed


def sign_in_url(slug: str) -> str:
    return f"{settings.EXTERNAL_URL.rstrip('/')}{reverse('sign_in', kwargs={'account': slug})}"


@transaction.atomic
def account_sign_up(
    *, email: str, account_name: str, actor_name: str, context: Context
) -> Provisioned:
    """Create an account with `email` as its admin and send the welcome email.

    Raises Refused when sign-up is switched off, ValidationFailed (fields as in
    `account_provision`: name, admin_name, admin_email) for bad input, a disallowed email
    domain or an undeliverable email; nothing is kept in those cases.
    """
    if not sign_up_enabled():
        raise Refused(MSG_DISABLED)
    email = email.strip() if isinstance(email, str) else email
    if isinstance(email, str) and "@" in email and not email_domain_allowed(email):
        raise ValidationFailed({"admin_email": [MSG_DOMAIN_NOT_ALLOWED]})
    provisioned = account_provision(
        name=account_name,
        slug=None,  # always generated (§9 item 24)
        legal_name=None,
        admin_name=actor_name,
        admin_email=email,
    )
    _welcome_email_send(provisioned, context=context)
    return provisioned


def welcome_email_build(
    provisioned: Provisioned, *, context: Context
) -> mail.EmailMultiAlternatives:
    account = provisioned.account
    data = {
        "account": account,
        "actor": provisioned.admin,
        "email": provisioned.identity.provider_identifier,
        "sign_in_url": sign_in_url(account.slug),
        "context": context,
        "now": timezone.now(),
    }
    message = templated_email(
        subject=WELCOME_SUBJECT,
        template="welcome",
        data=data,
        to=[provisioned.identity.provider_identifier],
    )
    return message


def _welcome_email_send(provisioned: Provisioned, *, context: Context) -> None:
    message = welcome_email_build(provisioned, context=context)
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # any backend/SMTP/socket error: undo the sign-up
        logger.warning("welcome email to account %s failed: %r", provisioned.account.pk, exc)
        raise ValidationFailed({"admin_email": [MSG_DELIVERY_FAILED]}) from exc
