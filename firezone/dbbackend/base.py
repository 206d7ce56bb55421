"""Django's PostgreSQL backend with one addition: after the commit hooks of a transaction have
run, `firezone.changes.flush()` publishes what they collected as one batch per account (see
`firezone.changes`). Django has no "all hooks ran" signal; this is the supported extension point
(a backend subclass) rather than reordering Django's private hook list."""

from __future__ import annotations

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    fz_running_commit_hooks = False

    def run_and_clear_commit_hooks(self) -> None:
        self.fz_running_commit_hooks = True
        try:
            super().run_and_clear_commit_hooks()
        finally:
            self.fz_running_commit_hooks = False
            from firezone import changes

            changes.flush()
