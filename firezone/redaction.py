"""The one rule for what is secret in stored JSON and row images (domain.md §1.5, §1.7).

Used by the change log (`changes.row_image`: nothing secret reaches the log or the channel
layer) and by the Django admin (`firezone.web.admin.masked_json`), so both hide the same keys:

* token and one-time-code hashes and salts (`secret_hash`, `secret_salt`, `code_hash`),
  password hashes;
* OIDC client secrets, the Google service-account key (`service_account_json_key`, with its
  `private_key`), any private key or pre-shared key;
* OAuth tokens (`access_token`, `refresh_token`, `id_token`) and PKCE verifiers.

A key is secret when it contains one of the markers, or ends in the word `token`: a token's
*id* (`token_id`) or type (`token_type`) is not a secret, and the change log's readers need the
ids. The key stays with its value replaced, so a reader still sees that it is set (or changed);
a None or "" value stays as it is (not set is no secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"secret|password|hash|salt|private_key|json_key|psk|verifier|(^|_)token$", re.IGNORECASE
)


def is_secret_key(key: Any) -> bool:
    return bool(_SECRET_KEY.search(str(key)))


def redact(value: Any) -> Any:
    """Copy of a JSON value with the value of every secret key replaced by `REDACTED`."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(key) and item not in (None, "") else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
