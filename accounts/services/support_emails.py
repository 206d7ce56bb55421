"""Requests an admin sends to Firezone staff (billing_sync_jobs.md §4.2, portal.md §3.15): the
account deletion request (Settings → Account → "Delete Account") and the REST API beta request
(Settings → API Clients). Plain-text emails to support, replying to the requesting admin.

Nothing is recorded: like the original, the pages only show "request sent" until reloaded.
"""

from __future__ import annotations

from django.conf import settings
from django.core import mail

from accounts.auth import P, Subject, ensure_permissions

SUPPORT_EMAIL = "support@firezone.dev"
FALLBACK_REPLY_TO = "notifications@firezone.dev"


def _reply_to(subject: Subject) -> str:
    """The requester's identifier when it is an address, else the notifications address."""
    identity = subject.identity
    for candidate in (
        getattr(identity, "email", None),
        getattr(identity, "provider_identifier", None),
    ):
        if isinstance(candidate, str) and "@" in candidate:
            return candidate
    return FALLBACK_REPLY_TO


def _details(subject: Subject) -> str:
    account, actor = subject.account, subject.actor
    identifier = subject.identity.provider_identifier if subject.identity else ""
    return (
        f"Account ID: {account.pk}\n"
        f"Account Slug: {account.slug}\n"
        f"Account Name: {account.name}\n"
        f"Actor ID: {actor.pk}\n"
        f"Actor Name: {actor.name}\n"
        f"Identifier: {identifier}\n"
    )


def _send(subject: Subject, title: str, body: str) -> None:
    mail.EmailMessage(
        subject=title,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[SUPPORT_EMAIL],
        reply_to=[_reply_to(subject)],
    ).send(fail_silently=False)


def account_delete_request_send(*, subject: Subject) -> None:
    """Ask staff to delete the subject's account (admins only); delivery errors propagate."""
    ensure_permissions(subject, P.BILLING_MANAGE_OWN)
    body = (
        "REQUEST TO DELETE ACCOUNT!\n\n"
        "An admin asked for this account to be deleted. To do so:\n"
        "1. Cancel the account's Stripe subscription immediately (not at the period end), which\n"
        "   disables the account.\n"
        "2. Delete the disabled account with the ops helper `delete_disabled_account`.\n\n"
        + _details(subject)
    )
    _send(subject, f"ACCOUNT DELETE REQUEST - {subject.account.slug}", body)


def rest_api_beta_request_send(*, subject: Subject) -> None:
    """Ask staff to enable the REST API (`rest_api` feature) for the subject's account."""
    ensure_permissions(subject, P.AUTH_MANAGE_API_CLIENTS)
    body = "REST API Beta Request\n\n" + _details(subject)
    _send(subject, f"REST API Beta Request - {subject.account.slug}", body)
