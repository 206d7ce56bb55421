"""E-mail: building the product's messages (`templated_email`), and the development backend that
prints every message to the console (so `make run` shows sign-in codes) and keeps the last few in
the shared cache for `/dev/mailbox` (portal.md §1.5). The backend is never used in production:
the default there is SMTP (EMAIL_URL) or the plain console backend."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.template.loader import render_to_string
from django.utils import timezone

logger = logging.getLogger(__name__)


def templated_email(
    *, subject: str, template: str, data: dict[str, Any], to: list[str]
) -> EmailMultiAlternatives:
    """A text + HTML message from `templates/emails/<template>.txt` and `.html`, from
    DEFAULT_FROM_EMAIL."""
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"emails/{template}.txt", data), to=to
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", data), "text/html")
    return message


MAILBOX_KEY = "dev_mailbox"
MAILBOX_SIZE = 50
MAILBOX_TTL = 24 * 3600


def _summary(message: EmailMessage) -> dict[str, Any]:
    html = None
    for content, mimetype in getattr(message, "alternatives", None) or ():
        if mimetype == "text/html":
            html = content
    return {
        "id": uuid.uuid4().hex,
        "subject": message.subject,
        "from": message.from_email,
        "to": list(message.to),
        "text": message.body,
        "html": html,
        "sent_at": timezone.now().isoformat(),
    }


def mailbox() -> list[dict[str, Any]]:
    """Stored messages, newest first."""
    stored = cache.get(MAILBOX_KEY)
    return list(stored) if isinstance(stored, list) else []


class DevMailboxBackend(ConsoleBackend):
    """Prints a readable summary (headers and the plain-text part) instead of the raw MIME
    message, so sign-in codes are easy to spot in `make run`'s output."""

    def write_message(self, message: EmailMessage) -> None:
        rule = "-" * 79
        self.stream.write(
            f"{rule}\nSubject: {message.subject}\nFrom: {message.from_email}\n"
            f"To: {', '.join(message.to)}\n\n{message.body}\n"
            f"(full message with HTML: /dev/mailbox)\n{rule}\n"
        )

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        if email_messages:
            try:
                stored = [_summary(m) for m in reversed(list(email_messages))] + mailbox()
                cache.set(MAILBOX_KEY, stored[:MAILBOX_SIZE], MAILBOX_TTL)
            except Exception:  # the mailbox is a convenience; never fail a send for it
                logger.warning("could not store the message in the dev mailbox", exc_info=True)
        return sent
