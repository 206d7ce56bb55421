"""Django's PostgreSQL backend with one addition: the commit hooks of a transaction run inside
`firezone.changes.collecting()`, which publishes what they collected as one message per account
once they all ran (see `firezone.changes`). Django has no "all hooks ran" signal; a backend
subclass is the supported extension point (rather than reordering Django's private hook list)."""

from __future__ import annotations

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def run_and_clear_commit_hooks(self) -> None:
        from firezone import changes

        # A hook may commit a transaction of its own: its hooks run nested, in a collection of
        # their own, so each transaction is published as its own message.
        with changes.collecting():
            super().run_and_clear_commit_hooks()
