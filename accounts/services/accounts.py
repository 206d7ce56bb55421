"""Account writes (domain.md §2.1). Creation and billing-driven changes are system paths (no
subject); a user may only rename the account and change its `config`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import validation
from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account
from accounts.signals import account_disabled, account_updated
from firezone import changes
from firezone.errors import NotFound, ValidationFailed
from firezone.names import adjective_noun

MSG_TAKEN = "has already been taken"

# Fields the system path may set (`update_account/2`); users get only name/legal_name/config.
SYSTEM_FIELDS = frozenset(
    {
        "slug",
        "name",
        "legal_name",
        "disabled_reason",
        "disabled_at",
        "warning",
        "warning_delivery_attempts",
        "warning_last_sent_at",
        "features",
        "limits",
        "metadata",
        "config",
    }
)


def deep_merge(base: Mapping[str, Any] | None, update: Mapping[str, Any]) -> dict[str, Any]:
    """Embed merge semantics: nested objects are merged key by key, anything else replaced."""
    merged = dict(base or {})
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def _clean(errors: dict[str, list[str]], field: str, cleaner: Any, value: Any) -> Any:
    """Run one account validation cleaner, collecting its messages into `errors`."""
    try:
        return cleaner(value)
    except ValidationFailed as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(key, []).extend(messages)
        return None


def _clean_name(errors: dict[str, list[str]], value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.setdefault("name", []).append(validation.MSG_BLANK)
        return None
    return _clean(errors, "name", validation.clean_name, value)


def _clean_legal_name(errors: dict[str, list[str]], value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.setdefault("legal_name", []).append(validation.MSG_BLANK)
        return None
    return _clean(errors, "legal_name", validation.clean_legal_name, value)


def _clean_slug(errors: dict[str, list[str]], value: Any, *, exclude_pk: Any = None) -> str | None:
    if not isinstance(value, str):
        errors.setdefault("slug", []).append(validation.MSG_INVALID)
        return None
    slug = _clean(errors, "slug", validation.clean_slug, value)
    if slug is not None and _slug_taken(slug, exclude_pk=exclude_pk):
        errors.setdefault("slug", []).append(MSG_TAKEN)
    return slug


def _slug_taken(slug: str, *, exclude_pk: Any = None) -> bool:
    # citext: equality is case-insensitive, like the unique index.
    return Account.objects.filter(slug=slug).exclude(pk=exclude_pk).exists()


def _clean_config(errors: dict[str, list[str]], value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        errors.setdefault("config", []).append(validation.MSG_INVALID)
        return None
    try:
        cleaned = validation.clean_config_update(value)
    except ValidationFailed as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(f"config.{key}", []).extend(messages)
        return None
    return cleaned


def _replace_embed(
    errors: dict[str, list[str]], field: str, value: Any, keys: tuple[str, ...]
) -> dict[str, Any] | None:
    """`features`/`limits` are replaced wholesale: unsupplied keys become null."""
    if not isinstance(value, Mapping):
        errors.setdefault(field, []).append(validation.MSG_INVALID)
        return None
    result: dict[str, Any] = {}
    for key in keys:
        item = value.get(key)
        if field == "features" and item is not None and not isinstance(item, bool):
            errors.setdefault(f"{field}.{key}", []).append(validation.MSG_INVALID)
        if (
            field == "limits"
            and item is not None
            and (not isinstance(item, int) or isinstance(item, bool) or item < 0)
        ):
            errors.setdefault(f"{field}.{key}", []).append("must be greater than or equal to 0")
        result[key] = item
    return result


def _default_config(config: Mapping[str, Any]) -> dict[str, Any]:
    # Outdated-gateway emails are on unless explicitly set (§1.1).
    return deep_merge({"notifications": {"outdated_gateway": {"enabled": True}}}, config)


def _save_unique(account: Account, *, creating: bool) -> None:
    """Save in a savepoint; a concurrent insert of the same slug becomes a validation error."""
    try:
        with transaction.atomic():
            account.save(force_insert=creating)
    except IntegrityError as exc:
        if "accounts_slug_index" in str(exc):
            raise ValidationFailed({"slug": [MSG_TAKEN]}) from exc
        raise


def _generate_slug() -> str:
    while True:
        slug = adjective_noun("_")
        if not _slug_taken(slug):
            return slug


@transaction.atomic
def account_create(
    *,
    name: str,
    slug: str | None = None,
    legal_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    features: Mapping[str, Any] | None = None,
    limits: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Account:
    """System path (sign-up, Stripe, ops, seeds): create an account; a slug is generated when
    none is given. Everyone group, providers and actors are the caller's next steps."""
    errors: dict[str, list[str]] = {}
    clean_name = _clean_name(errors, name)
    clean_legal = _clean_legal_name(errors, legal_name if legal_name is not None else name)
    clean_slug = _clean_slug(errors, slug) if slug is not None else None
    clean_config = _clean_config(errors, config or {})
    clean_features = (
        _replace_embed(errors, "features", features, Account.FEATURES) if features else {}
    )
    clean_limits = _replace_embed(errors, "limits", limits, Account.LIMITS) if limits else {}
    if metadata is not None and not isinstance(metadata, Mapping):
        errors.setdefault("metadata", []).append(validation.MSG_INVALID)
    if errors:
        raise ValidationFailed(errors)
    assert clean_name is not None and clean_legal is not None  # no errors: both are clean
    account = Account(
        name=clean_name,
        legal_name=clean_legal,
        slug=clean_slug or _generate_slug(),
        config=_default_config(clean_config or {}),
        features=clean_features or {},
        limits=clean_limits or {},
        metadata=dict(metadata or {}),
    )
    _save_unique(account, creating=True)
    changes.inserted(account)
    return account


@transaction.atomic
def account_update(
    *,
    subject: Subject,
    account: Account,
    name: str | None = None,
    legal_name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Account:
    """A user's update of its own account: `name`, `legal_name`, `config` (merged).
    None leaves a field unchanged."""
    ensure_permissions(subject, P.ACCOUNT_MANAGE_OWN)
    if str(account.pk) != str(subject.account_id):
        raise NotFound()
    attrs: dict[str, Any] = {}
    if name is not None:
        attrs["name"] = name
    if legal_name is not None:
        attrs["legal_name"] = legal_name
    if config is not None:
        attrs["config"] = config
    return _update(account, attrs, subject=subject)


@transaction.atomic
def account_update_system(*, account: Account, **attrs: Any) -> Account:
    """System path (billing, ops): any of SYSTEM_FIELDS. `features`/`limits` are replaced
    wholesale; `config`/`metadata` are merged. Disabling deletes the account's flows."""
    unknown = set(attrs) - SYSTEM_FIELDS
    if unknown:
        raise ValidationFailed({key: ["cannot be changed"] for key in sorted(unknown)})
    return _update(account, attrs, subject=None)


def _update(account: Account, attrs: Mapping[str, Any], *, subject: Subject | None) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "name":
            values[key] = _clean_name(errors, value)
        elif key == "legal_name":
            values[key] = _clean_legal_name(errors, value)
        elif key == "slug":
            values[key] = _clean_slug(errors, value, exclude_pk=account.pk)
        elif key == "config":
            cleaned = _clean_config(errors, value)
            values[key] = deep_merge(account.config, cleaned or {})
        elif key == "metadata":
            if not isinstance(value, Mapping):
                errors.setdefault("metadata", []).append(validation.MSG_INVALID)
            else:
                values[key] = deep_merge(account.metadata, value)
        elif key == "features":
            values[key] = _replace_embed(errors, key, value, Account.FEATURES)
        elif key == "limits":
            values[key] = _replace_embed(errors, key, value, Account.LIMITS)
        else:
            values[key] = value
    if errors:
        raise ValidationFailed(errors)
    old = changes.row_image(account)
    was_disabled = account.disabled_at is not None
    changed = frozenset(key for key, value in values.items() if getattr(account, key) != value)
    for key, value in values.items():
        setattr(account, key, value)
    _save_unique(account, creating=False)
    if not was_disabled and account.disabled_at is not None:
        account_disabled.send(sender=Account, account=account, subject=subject)
    if changed:
        account_updated.send(sender=Account, account=account, changed=changed, subject=subject)
    changes.updated(old, account, subject=subject)
    return account


@transaction.atomic
def account_disable(*, account: Account, reason: str, at: datetime | None = None) -> Account:
    """System path (billing): disable the account (an existing `disabled_at` is kept) and
    delete all its flows."""
    current = Account.objects.filter(pk=account.pk).values_list("disabled_at", flat=True).first()
    return _update(
        account,
        {"disabled_at": current or at or timezone.now(), "disabled_reason": reason},
        subject=None,
    )


@transaction.atomic
def account_enable(*, account: Account) -> Account:
    """System path (billing): re-enable a disabled account."""
    return _update(account, {"disabled_at": None, "disabled_reason": None}, subject=None)
