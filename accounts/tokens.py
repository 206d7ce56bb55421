"""Token secrets, hashing and the encoded token string (domain.md §2.7). Pure: no models, no DB.

A token row stores only `secret_salt` and `secret_hash = hex(sha3_256(nonce + fragment + salt))`.
Holders get an *encoded token string* that carries the nonce, the token id, the account id and
the fragment, signed so tampering is refused before any database lookup:

    <nonce> "." signing_input "." b64url(HMAC-SHA256(key, signing_input))
    signing_input = "SFMyNTY" "." b64url(payload)

This is the original portal's Plug.Crypto `sign/verify` format with an Erlang term payload
`{{account_id | nil, token_id, fragment}, signed_at_ms, 86400}`, kept byte-compatible so tokens
already held by clients, gateways and relays (and the docker-compose dev tokens) keep working
(domain.md §8 item 19). The signing key is derived per token type,

    key = PBKDF2-HMAC-SHA256(TOKENS_KEY_BASE, TOKENS_SALT + token_type, 1000 iterations, 32 bytes)

so a token of one type never verifies in another context. `TOKENS_KEY_BASE` defaults to
`SECRET_KEY` and `TOKENS_SALT` to a fixed string when the settings do not define them; set them
to the original deployment's values to accept its tokens. The string is URL-safe apart from a
caller-chosen nonce (clients choose their own; it is URL-encoded like any query value).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import TextChoices


class TokenType(TextChoices):
    """The token types, and `accounts.models.Token.Type` (Django choices, no models here)."""

    BROWSER = "browser"
    CLIENT = "client"
    API_CLIENT = "api_client"
    RELAY_GROUP = "relay_group"
    GATEWAY_GROUP = "gateway_group"
    EMAIL = "email"


TOKEN_TYPES = frozenset(t.value for t in TokenType)

# Plug.Crypto's header: b64url('HS256').
_HEADER = "SFMyNTY"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_AGE = 86400  # written into the payload for compatibility; ignored on verification
_DEFAULT_TOKENS_SALT = "firezone.accounts.tokens"

MAX_NONCE_LENGTH = 128
# Generous bound for a real token (nonce 128 + signed part ~300 chars); longer input is refused
# before any parsing or hashing.
MAX_ENCODED_LENGTH = 2048
_NONCE_RE = re.compile(r"[^.]{0,128}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_UUID_TEXT_LENGTH = 36

EMAIL_CODE_LENGTH = 5
# Lower-cased URL-safe base64 with look-alikes remapped (domain.md §2.6).
_EMAIL_CODE_REMAP = str.maketrans("-+/lO0=_", "ptusxyzw")

BROWSER_SESSION_LIFETIME = timedelta(hours=10)
CLIENT_SESSION_LIFETIME = timedelta(days=7)
# Shorter than the original's 15 minutes / 5 attempts (OWASP ASVS 2.7: short-lived, few tries).
EMAIL_TOKEN_LIFETIME = timedelta(minutes=10)
EMAIL_TOKEN_ATTEMPTS = 3
ADMIN_TOKEN_DEFAULT_DAYS = 365


@dataclass(frozen=True, slots=True)
class TokenSecrets:
    """What a new token needs: `nonce` and `fragment` go to the holder, `salt`/`hash` to the row."""

    nonce: str
    fragment: str
    salt: str
    hash: str


@dataclass(frozen=True, slots=True)
class DecodedToken:
    """A signature-checked token string; the row still has to be looked up and `verify`-ed."""

    nonce: str
    account_id: uuid.UUID | None  # None only for global relay-group tokens
    token_id: uuid.UUID
    fragment: str


# ---------------------------------------------------------------------------------------------
# Secrets and hashing


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_fragment(token_type: str) -> str:
    """A fresh secret fragment: base32hex with padding of 32 random bytes (56 chars); email
    tokens use 27 random bytes as URL-safe base64 (36 chars) because the browser keeps it."""
    _check_type(token_type)
    if token_type == TokenType.EMAIL:
        return _b64u(secrets.token_bytes(27))
    return base64.b32hexencode(secrets.token_bytes(32)).decode("ascii")


def generate_salt() -> str:
    """16 random bytes, URL-safe base64 without padding (22 chars)."""
    return _b64u(secrets.token_bytes(16))


def generate_email_code() -> str:
    """The 5-character lower-case code emailed for sign-in (the email token's nonce)."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(8)).decode("ascii").lower()
    return raw.translate(_EMAIL_CODE_REMAP)[:EMAIL_CODE_LENGTH]


def is_valid_nonce(nonce: str) -> bool:
    """`^[^.]{0,128}$`: the nonce is everything before the first dot of the token string."""
    return _NONCE_RE.fullmatch(nonce) is not None and _utf8(nonce) is not None


def hash_secret(nonce: str, fragment: str, salt: str) -> str:
    """`secret_hash`: lowercase hex SHA3-256 of the UTF-8 concatenation nonce + fragment + salt."""
    return hashlib.sha3_256((nonce + fragment + salt).encode("utf-8")).hexdigest()


def generate_secrets(token_type: str, *, nonce: str | None = None) -> TokenSecrets:
    """Everything random a new token of `token_type` needs.

    `nonce=None` picks the default: the emailed code for email tokens, empty otherwise
    (service-account, API-client, gateway and relay tokens). Clients pass their own nonce at
    sign-in. Raises ValueError for an unknown type or an invalid nonce.
    """
    _check_type(token_type)
    if nonce is None:
        nonce = generate_email_code() if token_type == TokenType.EMAIL else ""
    if not is_valid_nonce(nonce):
        raise ValueError("nonce must be at most 128 characters and contain no '.'")
    fragment = generate_fragment(token_type)
    salt = generate_salt()
    return TokenSecrets(
        nonce=nonce, fragment=fragment, salt=salt, hash=hash_secret(nonce, fragment, salt)
    )


def verify(decoded: DecodedToken, stored_hash: str, salt: str) -> bool:
    """Whether the decoded token's secret matches the row's `secret_hash` (constant time)."""
    candidate = hash_secret(decoded.nonce, decoded.fragment, salt).encode("ascii")
    stored = _utf8(stored_hash)
    if stored is None:
        return False
    return hmac.compare_digest(candidate, stored)


# ---------------------------------------------------------------------------------------------
# Encoded token string


def _check_type(token_type: str) -> None:
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {token_type!r}")


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None


@functools.lru_cache(maxsize=64)
def _derive_key(key_base: str, salt: str, token_type: str) -> bytes:
    # Cached: PBKDF2 runs on every decode otherwise. Keyed on the settings values, so
    # override_settings in tests takes effect.
    return hashlib.pbkdf2_hmac(
        "sha256", key_base.encode("utf-8"), (salt + token_type).encode("utf-8"), 1000, 32
    )


def _signing_key(token_type: str) -> bytes:
    key_base = getattr(settings, "TOKENS_KEY_BASE", "") or settings.SECRET_KEY
    salt = getattr(settings, "TOKENS_SALT", "") or _DEFAULT_TOKENS_SALT
    return _derive_key(key_base, salt, token_type)


def _mac(token_type: str, signing_input: str) -> str:
    digest = hmac.new(_signing_key(token_type), signing_input.encode("ascii"), hashlib.sha256)
    return _b64u(digest.digest())


def _etf_binary(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"\x6d" + struct.pack(">I", len(data)) + data


def _etf_int(n: int) -> bytes:
    if 0 <= n <= 255:
        return b"\x61" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"\x62" + struct.pack(">i", n)
    magnitude = abs(n).to_bytes((abs(n).bit_length() + 7) // 8, "little")
    return b"\x6e" + bytes([len(magnitude), 1 if n < 0 else 0]) + magnitude


def encode(
    token_id: uuid.UUID,
    nonce: str,
    fragment: str,
    *,
    token_type: str,
    account_id: uuid.UUID | None,
    signed_at: datetime | None = None,
) -> str:
    """The token string handed to the holder: `<nonce>.SFMyNTY.<payload>.<mac>`.

    `account_id` is None only for global relay-group tokens. `signed_at` (default now) only
    makes the output reproducible; verification ignores it. Email sign-in keeps
    `encode(..., nonce="")` in the browser and mails the nonce: `code + that` is the full token.
    """
    _check_type(token_type)
    if not is_valid_nonce(nonce):
        raise ValueError("nonce must be at most 128 characters and contain no '.'")
    # Integer arithmetic: float timestamps can be off by a millisecond.
    signed_at_ms = (
        (signed_at - _EPOCH) // timedelta(milliseconds=1)
        if signed_at is not None
        else time.time_ns() // 1_000_000
    )
    account = b"\x77\x03nil" if account_id is None else _etf_binary(str(account_id))
    payload = (
        b"\x83\x68\x03\x68\x03"
        + account
        + _etf_binary(str(token_id))
        + _etf_binary(fragment)
        + _etf_int(signed_at_ms)
        + _etf_int(_MAX_AGE)
    )
    signing_input = f"{_HEADER}.{_b64u(payload)}"
    return f"{nonce}.{signing_input}.{_mac(token_type, signing_input)}"


class _Malformed(Exception):
    """Internal: the payload is not the term we issue."""


class _TermReader:
    """Just enough of the Erlang External Term Format for our payload; raises _Malformed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Malformed
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def tuple3(self) -> None:
        if self.take(2) != b"\x68\x03":
            raise _Malformed

    def text_or_nil(self) -> str | None:
        tag = self.byte()
        if tag == 0x6D:  # BINARY_EXT
            (length,) = struct.unpack(">I", self.take(4))
            try:
                return self.take(length).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Malformed from exc
        if tag in (0x64, 0x76):  # ATOM_EXT, ATOM_UTF8_EXT
            (length,) = struct.unpack(">H", self.take(2))
        elif tag in (0x73, 0x77):  # SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT
            length = self.byte()
        else:
            raise _Malformed
        if self.take(length) != b"nil":
            raise _Malformed
        return None

    def integer(self) -> int:
        tag = self.byte()
        if tag == 0x61:  # SMALL_INTEGER_EXT
            return self.byte()
        if tag == 0x62:  # INTEGER_EXT
            return int(struct.unpack(">i", self.take(4))[0])
        if tag == 0x6E:  # SMALL_BIG_EXT
            n = self.byte()
            sign = self.byte()
            value = int.from_bytes(self.take(n), "little")
            return -value if sign else value
        raise _Malformed


def _parse_payload(payload: bytes) -> tuple[uuid.UUID | None, uuid.UUID, str]:
    reader = _TermReader(payload)
    if reader.byte() != 0x83:
        raise _Malformed
    reader.tuple3()
    reader.tuple3()
    account_text = reader.text_or_nil()
    token_text = reader.text_or_nil()
    fragment = reader.text_or_nil()
    reader.integer()  # signed_at: ignored (max_age infinity)
    reader.integer()  # max_age: ignored
    if reader.pos != len(payload) or token_text is None or fragment is None:
        raise _Malformed
    account_id = _parse_uuid(account_text) if account_text is not None else None
    return account_id, _parse_uuid(token_text), fragment


def _parse_uuid(text: str) -> uuid.UUID:
    if len(text) != _UUID_TEXT_LENGTH:
        raise _Malformed
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise _Malformed from exc


def decode(encoded: str, *, token_type: str) -> DecodedToken | None:
    """Check the signature for `token_type` and unpack; None for anything else, never raises.

    Garbage (wrong type, non-str, huge, bad base64, bad signature, a token of another type,
    an unexpected payload, non-UUID ids) all give None, so callers answer "invalid or expired"
    without touching the database.
    """
    if token_type not in TOKEN_TYPES or not isinstance(encoded, str):
        return None
    if len(encoded) > MAX_ENCODED_LENGTH:
        return None
    nonce, dot, signed = encoded.partition(".")
    if not dot or not is_valid_nonce(nonce) or not signed.isascii():
        return None
    parts = signed.split(".")
    if len(parts) != 3 or parts[0] != _HEADER:
        return None
    _, payload_b64, mac = parts
    if not (_B64URL_RE.fullmatch(payload_b64) and _B64URL_RE.fullmatch(mac)):
        return None
    expected = _mac(token_type, f"{_HEADER}.{payload_b64}")
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
        return None
    try:
        payload = base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
        account_id, token_id, fragment = _parse_payload(payload)
    except (binascii.Error, ValueError, _Malformed):
        return None
    return DecodedToken(nonce=nonce, account_id=account_id, token_id=token_id, fragment=fragment)


# ---------------------------------------------------------------------------------------------
# Expiry


def _admin_default(now: datetime) -> datetime:
    # The UI's date field defaults to today + 365 days, read as 00:00 UTC of that date.
    day = now.astimezone(UTC).date() + timedelta(days=ADMIN_TOKEN_DEFAULT_DAYS)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def default_expiry(
    token_type: str,
    now: datetime,
    *,
    service_account: bool = False,
    idp_expires_at: datetime | None = None,
) -> datetime | None:
    """Default `expires_at` for a new token of `token_type` created at `now` (None = never).

    * browser: now + 10 h, or the IdP's expiry when that is earlier.
    * client: now + 7 days for user sessions (the IdP expiry is ignored on purpose); for service
      accounts the admin chooses, and the default offered is 00:00 UTC of today + 365 days.
    * api_client: admin-chosen; same default as service accounts (the spec only gives the UI
      form's default, we use it as the API default too).
    * email: now + 10 minutes (with `EMAIL_TOKEN_ATTEMPTS` = 3 remaining attempts).
    * gateway_group, relay_group: never.
    """
    _check_type(token_type)
    if token_type == TokenType.BROWSER:
        expires = now + BROWSER_SESSION_LIFETIME
        if idp_expires_at is not None and idp_expires_at < expires:
            return idp_expires_at
        return expires
    if token_type == TokenType.CLIENT:
        return _admin_default(now) if service_account else now + CLIENT_SESSION_LIFETIME
    if token_type == TokenType.API_CLIENT:
        return _admin_default(now)
    if token_type == TokenType.EMAIL:
        return now + EMAIL_TOKEN_LIFETIME
    return None


def default_remaining_attempts(token_type: str) -> int | None:
    """Only email tokens count attempts."""
    _check_type(token_type)
    return EMAIL_TOKEN_ATTEMPTS if token_type == TokenType.EMAIL else None
