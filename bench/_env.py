"""The environment of both benchmarks: the throwaway services of `firezone.devservices` and the
settings production runs with."""

from __future__ import annotations

import os
import secrets


def configure_environment(
    *, make_target: str, script: str, allowed_hosts: str, **extra: str
) -> dict[str, str]:
    """Check that PostgreSQL and Redis are given, set the settings (plus `extra` variables) in
    this process's environment and return it (for the processes it starts)."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            raise SystemExit(
                f"{name} is not set: run through `make {make_target}` or "
                f"`python -m firezone.devservices exec -- python bench/{script}`"
            )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.update(
        DEBUG="false",  # DEBUG keeps every SQL query in memory: not what production runs
        ALLOWED_HOSTS=allowed_hosts,
        DJANGO_SETTINGS_MODULE="firezone.settings",
        FIREZONE_TESTING="false",
        **extra,
    )
    return dict(os.environ)
