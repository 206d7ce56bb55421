"""The mock directory: fake users and groups, for testing directory sync."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.providers.base import MSG_INVALID, AdapterSpec
from firezone.errors import ValidationFailed

MOCK_DEFAULTS = {"num_actors": 500, "num_groups": 2500, "max_actors_per_group": 25}


class Mock(AdapterSpec):
    name = "mock"
    directory_sync = True
    # Listed among the sign-in options like the OIDC family; unusable without client
    # credentials (accounts.oidc.provider_config).
    oidc_sign_in = True

    @classmethod
    def clean_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        cleaned: dict[str, Any] = {}
        for key, default in MOCK_DEFAULTS.items():
            value = config.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors[f"adapter_config.{key}"] = [MSG_INVALID]
            cleaned[key] = value
        if errors:
            raise ValidationFailed(errors)
        return cleaned
