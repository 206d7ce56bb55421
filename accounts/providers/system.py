"""The account's own sign-in adapters: email (magic link) and username & password."""

from __future__ import annotations

from accounts.providers.base import AdapterSpec


class Email(AdapterSpec):
    name = "email"
    singleton = True
    manual_identities = True


class UserPass(AdapterSpec):
    name = "userpass"
    singleton = True
    manual_identities = True
    # Only on self-hosted set-ups that ask for it (`AUTH_PROVIDER_ADAPTERS`).
    creatable_by_default = False
