"""Who or what writes when no Subject does: the `subject` image of change-log rows written
without a subject (a directory sync, a Celery job, a management command, the Stripe webhook,
the staff admin).

A `contextvars.ContextVar`, so it follows the code that sets it: the thread, the asyncio task
(tasks copy their context), and `sync_to_async`/`async_to_sync` hops (asgiref carries the
context across). Nested origins stack: the innermost wins (a directory sync inside its Celery
job records the identity provider, not the job). Without any origin the rows keep a NULL
subject, read as "system" (old rows have it too). No Django imports: the Celery app module
loads this before the app registry is ready.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "firezone_change_origin", default=None
)


def current() -> dict[str, Any] | None:
    """A copy of the innermost origin, or None."""
    value = _current.get()
    return dict(value) if value is not None else None


@contextmanager
def origin(image: dict[str, Any]) -> Iterator[None]:
    """`with origin(system("billing.tasks.check_account_limits")): ...` — rows recorded
    without a subject inside the block carry `image` as their subject."""
    token = _current.set(dict(image))
    try:
        yield
    finally:
        _current.reset(token)


def system(job: str | None = None) -> dict[str, Any]:
    """The origin of a job (Celery task name, `manage.py <command>`, `stripe_webhook`)."""
    return {"kind": "system", "job": job} if job else {"kind": "system"}


def identity_provider(provider: Any, *, context: str = "sync") -> dict[str, Any]:
    """The origin of a directory sync's writes: the provider (an AuthProvider)."""
    return {
        "kind": "identity_provider",
        "provider_id": str(provider.pk),
        "provider_name": provider.name,
        "context": context,
    }


def staff(*, username: str, remote_ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """The origin of a Django admin write: the staff user and where the request came from."""
    return {
        "kind": "staff",
        "staff_user": username,
        "remote_ip": remote_ip,
        "user_agent": user_agent,
    }


def kind_of(subject: dict[str, Any] | None) -> str:
    """The writer's kind of any change-log `subject`, old rows included: NULL is "system"; a
    row written before `kind` existed is "api_client" or "actor" by its `actor_type`."""
    if subject is None:
        return "system"
    kind = subject.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    return "api_client" if subject.get("actor_type") == "api_client" else "actor"
