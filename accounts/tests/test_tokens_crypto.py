"""Token secrets, the encoded token string and expiry defaults (domain.md §2.7)."""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from accounts import tokens
from accounts.tokens import DecodedToken, TokenType

ACCOUNT_ID = uuid.UUID("c89bcc8c-9392-4dae-a40d-888aef6d28e0")
TOKEN_ID = uuid.UUID("2274560b-e97b-45e4-8b34-679c7617e98d")
NOW = datetime(2025, 3, 1, 14, 30, tzinfo=UTC)

# Dev deployment key material and tokens from docker-compose (domain.md §6).
DEV_KEYS = {
    "TOKENS_KEY_BASE": "5OVYJ83AcoQcPmdKNksuBhJFBhjHD1uUa9mDOHV/6EIdBQ6pXksIhkVeWIzFk5S2",
    "TOKENS_SALT": "t01wa0K4lUd7mKa0HAtZdE+jFOPDDej2",
}
DEV_CLIENT_TOKEN = (
    "n.SFMyNTY.g2gDaANtAAAAJGM4OWJjYzhjLTkzOTItNGRhZS1hNDBkLTg4OGFlZjZkMjhlMG0AAAAkN2RhN2QxY2QtMT"
    "ExYy00NGE3LWI1YWMtNDAyN2I5ZDIzMGU1bQAAACtBaUl5XzZwQmstV0xlUkFQenprQ0ZYTnFJWktXQnMyRGR3XzJ2Z0"
    "lRdkZnbgYAR_ywiZQBYgABUYA.PLNlzyqMSgZlbQb1QX5EzZgYNuY9oeOddP0qDkTwtGg"
)
DEV_GATEWAY_TOKEN = (
    ".SFMyNTY.g2gDaANtAAAAJGM4OWJjYzhjLTkzOTItNGRhZS1hNDBkLTg4OGFlZjZkMjhlMG0AAAAkMjI3NDU2MGItZTk3"
    "Yi00NWU0LThiMzQtNjc5Yzc2MTdlOThkbQAAADhPMDJMN1VTMkozVklOT01QUjlKNklMODhRSVFQNlVPOEFRVk82VTVJ"
    "UEwwVkpDMjJKR0gwPT09PW4GAAH8sImUAWIAAVGA.tAm2O9FcyF67VAF3rZdwQpeADrYOIs3S2l2K51G26OM"
)
DEV_RELAY_TOKEN = (
    ".SFMyNTY.g2gDaAN3A25pbG0AAAAkZTgyZmNkYzEtMDU3YS00MDE1LWI5MGItM2IxOGYwZjI4MDUzbQAAADhDMTROR0E4"
    "N0VKUlIwM0c0UVBSMDdBOUM2Rzc4NFRTU1RIU0Y0VEk1VDBHRDhENkwwVlJHPT09PW4GAOb7sImUAWIAAVGA.e_k2YXxB"
    "OSmqVSu5RRscjZJBkZ7OAGzkpr5X2ge1MNo"
)


def make(
    token_type: str = TokenType.GATEWAY_GROUP, nonce: str = ""
) -> tuple[str, tokens.TokenSecrets]:
    secret = tokens.generate_secrets(token_type, nonce=nonce)
    encoded = tokens.encode(
        TOKEN_ID, secret.nonce, secret.fragment, token_type=token_type, account_id=ACCOUNT_ID
    )
    return encoded, secret


# --- secrets and hashing --------------------------------------------------------------------


def test_hash_is_sha3_256_hex_of_the_concatenation() -> None:
    # Seeded client token row (domain.md §6 item 14).
    assert (
        tokens.hash_secret(
            "n", "AiIy_6pBk-WLeRAPzzkCFXNqIZKWBs2Ddw_2vgIQvFg", "kKKA7dtf3TJk0-1O2D9N1w"
        )
        == "5c1d6795ea1dd08b6f4fd331eeaffc12032ba171d227f328446f2d26b96437e5"
    )
    assert (
        tokens.hash_secret(
            "", "O02L7US2J3VINOMPR9J6IL88QIQP6UO8AQVO6U5IPL0VJC22JGH0====", "uQyisyqrvYIIitMXnSJFKQ"
        )
        == "876f20e8d4de25d5ffac40733f280782a7d8097347d77415ab6e4e548f13d2ee"
    )


@pytest.mark.parametrize(
    "token_type",
    [
        TokenType.BROWSER,
        TokenType.CLIENT,
        TokenType.API_CLIENT,
        TokenType.GATEWAY_GROUP,
        TokenType.RELAY_GROUP,
    ],
)
def test_fragment_is_padded_base32hex_of_32_bytes(token_type: str) -> None:
    fragment = tokens.generate_fragment(token_type)
    assert re.fullmatch(r"[0-9A-V]{52}====", fragment)
    assert len(base64.b32hexdecode(fragment)) == 32


def test_email_fragment_code_and_salt_shapes() -> None:
    fragment = tokens.generate_fragment(TokenType.EMAIL)
    assert re.fullmatch(r"[A-Za-z0-9_-]{36}", fragment)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", tokens.generate_salt())
    for _ in range(50):
        assert re.fullmatch(r"[a-km-z1-9]{5}", tokens.generate_email_code())


def test_generate_secrets_defaults_and_hash() -> None:
    email = tokens.generate_secrets(TokenType.EMAIL)
    assert len(email.nonce) == 5
    assert email.hash == tokens.hash_secret(email.nonce, email.fragment, email.salt)
    assert tokens.generate_secrets(TokenType.GATEWAY_GROUP).nonce == ""
    assert tokens.generate_secrets(TokenType.CLIENT, nonce="abc").nonce == "abc"
    a, b = tokens.generate_secrets(TokenType.CLIENT), tokens.generate_secrets(TokenType.CLIENT)
    assert a.fragment != b.fragment and a.salt != b.salt


@pytest.mark.parametrize("nonce", ["a.b", "x" * 129])
def test_invalid_nonce_is_refused(nonce: str) -> None:
    assert not tokens.is_valid_nonce(nonce)
    with pytest.raises(ValueError):
        tokens.generate_secrets(TokenType.CLIENT, nonce=nonce)
    with pytest.raises(ValueError):
        tokens.encode(TOKEN_ID, nonce, "f", token_type=TokenType.CLIENT, account_id=ACCOUNT_ID)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError):
        tokens.generate_secrets("service_account_client")
    assert tokens.decode(DEV_GATEWAY_TOKEN, token_type="nope") is None


# --- encode / decode / verify ---------------------------------------------------------------


@pytest.mark.parametrize("token_type", sorted(tokens.TOKEN_TYPES))
@pytest.mark.parametrize("nonce", ["", "n", "client-chosen nonce ✓"])
def test_round_trip(token_type: str, nonce: str) -> None:
    encoded, secret = make(token_type, nonce)
    assert encoded.startswith(f"{nonce}.SFMyNTY.")
    decoded = tokens.decode(encoded, token_type=token_type)
    assert decoded == DecodedToken(
        nonce=nonce, account_id=ACCOUNT_ID, token_id=TOKEN_ID, fragment=secret.fragment
    )
    assert tokens.verify(decoded, secret.hash, secret.salt)


def test_encoded_is_url_safe_apart_from_the_nonce() -> None:
    encoded, _ = make(TokenType.GATEWAY_GROUP)
    assert re.fullmatch(r"\.[A-Za-z0-9_.-]+", encoded)


def test_global_relay_token_has_no_account() -> None:
    secret = tokens.generate_secrets(TokenType.RELAY_GROUP)
    encoded = tokens.encode(
        TOKEN_ID, "", secret.fragment, token_type=TokenType.RELAY_GROUP, account_id=None
    )
    decoded = tokens.decode(encoded, token_type=TokenType.RELAY_GROUP)
    assert decoded is not None and decoded.account_id is None


def test_email_token_is_code_plus_encoded_fragment() -> None:
    secret = tokens.generate_secrets(TokenType.EMAIL)
    kept_in_browser = tokens.encode(
        TOKEN_ID, "", secret.fragment, token_type=TokenType.EMAIL, account_id=ACCOUNT_ID
    )
    decoded = tokens.decode(secret.nonce + kept_in_browser, token_type=TokenType.EMAIL)
    assert decoded is not None and decoded.nonce == secret.nonce
    assert tokens.verify(decoded, secret.hash, secret.salt)


def test_token_of_another_type_is_refused() -> None:
    encoded, _ = make(TokenType.GATEWAY_GROUP)
    for other in tokens.TOKEN_TYPES - {TokenType.GATEWAY_GROUP}:
        assert tokens.decode(encoded, token_type=other) is None


def test_other_secret_key_is_refused(settings) -> None:
    encoded, _ = make(TokenType.CLIENT)
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789abcdef"
    assert tokens.decode(encoded, token_type=TokenType.CLIENT) is None


def test_tampered_payload_or_signature_is_refused() -> None:
    encoded, _ = make(TokenType.CLIENT, "n")
    nonce, header, payload, mac = encoded.split(".")
    flipped = "A" if payload[10] != "A" else "B"
    tampered_payload = f"{nonce}.{header}.{payload[:10]}{flipped}{payload[11:]}.{mac}"
    assert tokens.decode(tampered_payload, token_type=TokenType.CLIENT) is None
    other_mac = "A" * len(mac) if mac != "A" * len(mac) else "B" * len(mac)
    assert tokens.decode(f"{nonce}.{header}.{payload}.{other_mac}", token_type="client") is None
    assert tokens.decode(f"{nonce}.{header}.{payload}.{mac}x", token_type="client") is None
    # Another token's (valid) signature does not transfer.
    other, _ = make(TokenType.CLIENT, "n")
    assert (
        tokens.decode(f"{nonce}.{header}.{payload}.{other.rsplit('.', 1)[1]}", token_type="client")
        is None
    )


def test_changing_the_nonce_fails_verification_not_decoding() -> None:
    encoded, secret = make(TokenType.CLIENT, "n")
    decoded = tokens.decode("m" + encoded[1:], token_type=TokenType.CLIENT)
    assert decoded is not None
    assert not tokens.verify(decoded, secret.hash, secret.salt)


def test_verify_refuses_wrong_hash_or_salt_and_uses_compare_digest() -> None:
    encoded, secret = make(TokenType.CLIENT)
    decoded = tokens.decode(encoded, token_type=TokenType.CLIENT)
    assert decoded is not None
    assert not tokens.verify(decoded, secret.hash, tokens.generate_salt())
    assert not tokens.verify(decoded, "0" * 64, secret.salt)
    assert not tokens.verify(decoded, "", secret.salt)
    assert not tokens.verify(decoded, "\ud800", secret.salt)
    with mock.patch.object(tokens.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        assert tokens.verify(decoded, secret.hash, secret.salt)
    spy.assert_called_once()


def test_decode_checks_the_signature_with_compare_digest() -> None:
    with mock.patch.object(tokens.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        tokens.decode(make(TokenType.CLIENT)[0], token_type=TokenType.CLIENT)
    spy.assert_called_once()


def test_signed_at_makes_output_reproducible() -> None:
    args = (TOKEN_ID, "", "frag")
    kwargs: dict[str, Any] = {
        "token_type": TokenType.GATEWAY_GROUP,
        "account_id": ACCOUNT_ID,
        "signed_at": NOW,
    }
    assert tokens.encode(*args, **kwargs) == tokens.encode(*args, **kwargs)


# --- compatibility with the original portal's tokens ----------------------------------------


@pytest.mark.parametrize(
    ("encoded", "token_type", "nonce", "account_id", "token_id", "fragment", "salt", "hash_"),
    [
        (
            DEV_CLIENT_TOKEN,
            TokenType.CLIENT,
            "n",
            ACCOUNT_ID,
            "7da7d1cd-111c-44a7-b5ac-4027b9d230e5",
            "AiIy_6pBk-WLeRAPzzkCFXNqIZKWBs2Ddw_2vgIQvFg",
            "kKKA7dtf3TJk0-1O2D9N1w",
            "5c1d6795ea1dd08b6f4fd331eeaffc12032ba171d227f328446f2d26b96437e5",
        ),
        (
            DEV_GATEWAY_TOKEN,
            TokenType.GATEWAY_GROUP,
            "",
            ACCOUNT_ID,
            "2274560b-e97b-45e4-8b34-679c7617e98d",
            "O02L7US2J3VINOMPR9J6IL88QIQP6UO8AQVO6U5IPL0VJC22JGH0====",
            "uQyisyqrvYIIitMXnSJFKQ",
            "876f20e8d4de25d5ffac40733f280782a7d8097347d77415ab6e4e548f13d2ee",
        ),
        (
            DEV_RELAY_TOKEN,
            TokenType.RELAY_GROUP,
            "",
            None,
            "e82fcdc1-057a-4015-b90b-3b18f0f28053",
            "C14NGA87EJRR03G4QPR07A9C6G784TSSTHSF4TI5T0GD8D6L0VRG====",
            "lZWUdgh-syLGVDsZEu_29A",
            "c3c9a031ae98f111ada642fddae546de4e16ceb85214ab4f1c9d0de1fc472797",
        ),
    ],
)
def test_docker_compose_dev_tokens_verify_with_the_dev_keys(
    settings, encoded, token_type, nonce, account_id, token_id, fragment, salt, hash_
) -> None:
    settings.TOKENS_KEY_BASE = DEV_KEYS["TOKENS_KEY_BASE"]
    settings.TOKENS_SALT = DEV_KEYS["TOKENS_SALT"]
    decoded = tokens.decode(encoded, token_type=token_type)
    assert decoded == DecodedToken(
        nonce=nonce, account_id=account_id, token_id=uuid.UUID(token_id), fragment=fragment
    )
    assert tokens.verify(decoded, hash_, salt)
    # Byte-for-byte: re-encoding with the original signing time reproduces the string.
    payload = base64.urlsafe_b64decode(encoded.split(".")[2] + "==")
    assert payload[-14:-11] == b"\x6e\x06\x00"  # SMALL_BIG_EXT, 6 bytes, positive
    signed_at_ms = int.from_bytes(payload[-11:-5], "little")
    again = tokens.encode(
        decoded.token_id,
        nonce,
        fragment,
        token_type=token_type,
        account_id=account_id,
        signed_at=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=signed_at_ms),
    )
    assert again == encoded


def test_dev_tokens_do_not_verify_with_our_default_keys() -> None:
    assert tokens.decode(DEV_GATEWAY_TOKEN, token_type=TokenType.GATEWAY_GROUP) is None


# --- garbage never raises -------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "...",
        "n",
        "n.SFMyNTY",
        ".SFMyNTY..",
        ".SFMyNTY.!!!.???",
        ".SFMyNTY.a.b.c",
        "x" * 200 + ".SFMyNTY.a.b",
        ".SFMyNTY." + "A" * 10_000_000 + ".b",
        "\ud800.SFMyNTY.a.b",
        ".SFMyNTY.\u00e9.b",
        "\x00.\x00.\x00.\x00",
    ],
)
def test_garbage_decodes_to_none(garbage: str) -> None:
    assert tokens.decode(garbage, token_type=TokenType.CLIENT) is None


def test_non_string_decodes_to_none() -> None:
    wrong_type = b".SFMyNTY.a.b"
    assert tokens.decode(wrong_type, token_type=TokenType.CLIENT) is None  # type: ignore[arg-type]  # bytes
    assert tokens.decode(None, token_type=TokenType.CLIENT) is None  # type: ignore[arg-type]  # None


def _signed(token_type: str, payload: bytes) -> str:
    # A correctly signed but unexpected payload: only a key holder could make one, still no crash.
    signing_input = "SFMyNTY." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f".{signing_input}.{tokens._mac(token_type, signing_input)}"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x83",
        b"\x83\x68\x03\x68\x03",
        b"\x83\x68\x03\x68\x03\x6d\xff\xff\xff\xff",
        b"\x83\x68\x03\x68\x03\x77\x03nil\x77\x03nil\x6d\x00\x00\x00\x01f\x61\x01\x61\x01",
        b"\x83\x68\x03\x68\x03\x6d\x00\x00\x00\x03abc\x6d\x00\x00\x00\x03abc\x6d\x00\x00\x00\x01f"
        b"\x61\x01\x61\x01",
        b"\x83\x68\x03\x68\x03\x77\x03foo\x6d\x00\x00\x00\x01f\x6d\x00\x00\x00\x01f\x61\x01\x61\x01",
        b"\x83\x68\x03\x68\x03\x77\x03nil\x6d\x00\x00\x00\x24"
        + str(TOKEN_ID).encode()
        + b"\x6d\x00\x00\x00\x02\xff\xfe\x61\x01\x61\x01",
        b"\x83\x68\x03\x68\x03\x77\x03nil\x6d\x00\x00\x00\x24"
        + str(TOKEN_ID).encode()
        + b"\x6d\x00\x00\x00\x01f\x61\x01\x61\x01trailing",
    ],
)
def test_signed_but_malformed_payload_decodes_to_none(payload: bytes) -> None:
    assert tokens.decode(_signed(TokenType.CLIENT, payload), token_type=TokenType.CLIENT) is None


def test_alternative_nil_atom_encodings_are_accepted() -> None:
    tail = (
        b"\x6d\x00\x00\x00\x24" + str(TOKEN_ID).encode() + b"\x6d\x00\x00\x00\x01f"
        b"\x62\x00\x00\x01\x00\x6e\x06\x00\x47\xfc\xb0\x89\x94\x01"
    )
    for nil in (b"\x64\x00\x03nil", b"\x73\x03nil", b"\x76\x00\x03nil", b"\x77\x03nil"):
        decoded = tokens.decode(
            _signed(TokenType.RELAY_GROUP, b"\x83\x68\x03\x68\x03" + nil + tail),
            token_type=TokenType.RELAY_GROUP,
        )
        assert decoded == DecodedToken(nonce="", account_id=None, token_id=TOKEN_ID, fragment="f")


@hyp_settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises(garbage: str) -> None:
    for token_type in (TokenType.CLIENT, TokenType.EMAIL):
        assert tokens.decode(garbage, token_type=token_type) is None


@hyp_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    as_text = raw.decode("latin-1")
    assert tokens.decode(as_text, token_type=TokenType.CLIENT) is None
    assert tokens.decode(raw.decode("utf-8", "surrogateescape"), token_type="client") is None
    # Signed garbage payloads exercise the term parser past the signature check.
    assert tokens.decode(_signed(TokenType.CLIENT, raw), token_type=TokenType.CLIENT) is None


@hyp_settings(max_examples=100, deadline=None)
@given(
    nonce=st.text(max_size=128).filter(lambda s: "." not in s and tokens.is_valid_nonce(s)),
    fragment=st.text(max_size=100).filter(lambda s: tokens._utf8(s) is not None),
    account=st.one_of(st.none(), st.uuids()),
    token_id=st.uuids(),
)
def test_round_trip_property(
    nonce: str, fragment: str, account: uuid.UUID | None, token_id: uuid.UUID
) -> None:
    encoded = tokens.encode(
        token_id, nonce, fragment, token_type=TokenType.CLIENT, account_id=account
    )
    assert tokens.decode(encoded, token_type=TokenType.CLIENT) == DecodedToken(
        nonce=nonce, account_id=account, token_id=token_id, fragment=fragment
    )


@hyp_settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), char=st.characters(codec="ascii"))
def test_any_single_character_change_is_refused(position: int, char: str) -> None:
    encoded, secret = make(TokenType.CLIENT, "n")
    position %= len(encoded)
    mutated = encoded[:position] + char + encoded[position + 1 :]
    decoded = tokens.decode(mutated, token_type=TokenType.CLIENT)
    if mutated == encoded:
        assert decoded is not None
    elif decoded is not None:
        # Only the nonce is outside the signature; a changed nonce fails the hash check.
        assert position == 0
        assert not tokens.verify(decoded, secret.hash, secret.salt)


# --- expiry defaults ------------------------------------------------------------------------


def test_browser_expiry_is_10h_or_the_earlier_idp_expiry() -> None:
    assert tokens.default_expiry(TokenType.BROWSER, NOW) == NOW + timedelta(hours=10)
    early = NOW + timedelta(hours=1)
    assert tokens.default_expiry(TokenType.BROWSER, NOW, idp_expires_at=early) == early
    late = NOW + timedelta(days=2)
    assert tokens.default_expiry(TokenType.BROWSER, NOW, idp_expires_at=late) == NOW + timedelta(
        hours=10
    )


def test_client_expiry_is_7_days_ignoring_the_idp() -> None:
    early = NOW + timedelta(minutes=5)
    assert tokens.default_expiry(TokenType.CLIENT, NOW, idp_expires_at=early) == NOW + timedelta(
        days=7
    )


def test_admin_issued_tokens_default_to_midnight_utc_a_year_ahead() -> None:
    expected = datetime(2026, 3, 1, tzinfo=UTC)
    assert tokens.default_expiry(TokenType.CLIENT, NOW, service_account=True) == expected
    assert tokens.default_expiry(TokenType.API_CLIENT, NOW) == expected


def test_email_and_device_group_expiry() -> None:
    assert tokens.default_expiry(TokenType.EMAIL, NOW) == NOW + timedelta(minutes=10)
    assert tokens.default_remaining_attempts(TokenType.EMAIL) == 3
    assert tokens.default_remaining_attempts(TokenType.CLIENT) is None
    assert tokens.default_expiry(TokenType.GATEWAY_GROUP, NOW) is None
    assert tokens.default_expiry(TokenType.RELAY_GROUP, NOW) is None
