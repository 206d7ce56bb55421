"""Resources and their site connections (domain.md §2.12, §4.1).

Every write records its changes through `firezone.changes`; the flow deletions the original's
replication hooks perform (address/type/ip_stack change, removed connection, delete) are done here
explicitly, in the same transaction, so they are recorded and published like any other delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from django.db import IntegrityError, transaction

from accounts.auth import SYSTEM_TRAIL, P, Subject, ensure_permissions, trail_for
from accounts.features import feature_enabled
from accounts.models import Account
from firezone import addresses, changes
from firezone.errors import NotFound, Refused, ValidationFailed
from firezone.lookup import get_or_not_found
from gateways.models import INTERNET_SITE_NAME, Site
from resources.models import Flow, Resource, ResourceConnection


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "not given" for update arguments, where None is a real value

INTERNET_RESOURCE_NAME: Final = "Internet"
USER_TYPES: Final = ("dns", "ip", "cidr")  # the Internet resource is created by the system only

MSG_BLANK: Final = "can't be blank"
MSG_INVALID: Final = "is invalid"
MSG_INTERNET_BY_SYSTEM: Final = "the Internet Resource is created by the system"
MSG_INTERNET_TYPE_FIXED: Final = "cannot be changed for the Internet Resource"
MSG_INTERNET_SITE: Final = "type must be 'internet' for the Internet site"
MSG_SITE_NOT_FOUND: Final = "site does not exist"
MSG_CANT_DELETE_INTERNET: Final = "The Internet Resource cannot be deleted."


def _too_long(limit: int) -> str:
    return f"should be at most {limit} character(s)"


# --- input cleaning (all errors of a call are collected, nothing is written on failure) ---------


def _clean_name(value: Any, errors: dict[str, list[str]]) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        errors["name"] = [MSG_BLANK]
    elif len(name) > 255:
        errors["name"] = [_too_long(255)]
    return name


def _clean_description(value: Any, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors["address_description"] = [MSG_INVALID]
        return None
    text = value.strip()
    # 255 = the column size (the original validated 512 and failed in the DB, §8 item 1).
    if len(text) > 255:
        errors["address_description"] = [_too_long(255)]
    return text or None


def _clean_address(
    resource_type: str, value: Any, account: Account, errors: dict[str, list[str]]
) -> str | None:
    if not isinstance(value, str | None):
        errors["address"] = [MSG_INVALID]
        return None
    try:
        return addresses.normalize_address(
            resource_type,
            value,
            internet_resource_enabled=feature_enabled(account, "internet_resource"),
        )
    except addresses.AddressError as exc:
        errors["address"] = list(exc.messages)
        return None


def _clean_ip_stack(
    resource_type: str, value: Any, previous_type: str | None, errors: dict[str, list[str]]
) -> str | None:
    try:
        return addresses.normalize_ip_stack(resource_type, value, previous_type=previous_type)
    except addresses.AddressError as exc:
        errors["ip_stack"] = list(exc.messages)
        return None


def _clean_filters(value: Any, errors: dict[str, list[str]]) -> list[dict[str, object]]:
    try:
        return addresses.normalize_filters(value)
    except addresses.FilterError as exc:
        for key, messages in exc.errors.items():
            name = "filters" if key == "filters" else f"filters.{key}"
            errors[name] = messages
        return []


def _site_id(item: Any) -> Any:
    if isinstance(item, Site):
        return item.pk
    if isinstance(item, Mapping):
        return item.get("gateway_group_id") or item.get("site_id")
    return item


def _clean_connections(
    value: Any, account: Account, resource_type: str, errors: dict[str, list[str]]
) -> list[Site]:
    """The sites to connect: of this account, at least one; only the Internet resource may (and
    must) be in the Internet site, mirroring the DB trigger with a form error."""
    if value is None or isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        items: list[Any] = [] if value is None else [value]
    else:
        items = list(value)
    ids: list[uuid.UUID] = []
    for item in items:
        try:
            site_id = uuid.UUID(str(_site_id(item)))
        except ValueError:
            errors["connections"] = [MSG_SITE_NOT_FOUND]
            return []
        if site_id not in ids:
            ids.append(site_id)
    if not ids:
        errors["connections"] = [MSG_BLANK]
        return []
    sites = {s.pk: s for s in Site.objects.filter(account_id=account.pk, id__in=ids)}
    if len(sites) != len(ids):
        errors["connections"] = [MSG_SITE_NOT_FOUND]
        return []
    is_internet = resource_type == Resource.Type.INTERNET
    if any(site.is_internet_site != is_internet for site in sites.values()):
        errors["connections"] = [MSG_INTERNET_SITE]
        return []
    return [sites[i] for i in ids]


def _connect(
    resource: Resource, sites: Iterable[Site], trail: dict[str, Any], subject: Subject | None
) -> None:
    for site in sites:
        try:
            with transaction.atomic():  # savepoint: the trigger may still refuse (races)
                connection = ResourceConnection.objects.create(
                    resource=resource, gateway_group=site, account_id=resource.account_id, **trail
                )
        except IntegrityError as exc:
            if "internet_resource_in_internet_site" in str(exc):
                raise ValidationFailed({"connections": [MSG_INTERNET_SITE]}) from exc
            raise
        changes.inserted(connection, subject=subject)


def _disconnect(connection: ResourceConnection, subject: Subject | None) -> None:
    # The original's hook on a connection delete: flows of the resource through that site go.
    changes.delete(
        Flow.objects.filter(
            resource_id=connection.resource_id, gateway__group_id=connection.gateway_group_id
        ),
        subject=subject,
    )
    changes.delete(connection, subject=subject)


def _load_for_update(subject: Subject, resource: Resource | Any) -> Resource:
    return get_or_not_found(Resource, resource, for_update=True, account_id=subject.account_id)


# --- services -----------------------------------------------------------------------------------


def resource_field_errors(
    *,
    account: Account,
    type: Any,
    name: Any = UNSET,
    address: Any = UNSET,
    address_description: Any = UNSET,
    filters: Any = UNSET,
    ip_stack: Any = UNSET,
) -> dict[str, list[str]]:
    """The errors `resource_create`/`resource_update` would report for these fields, without
    writing or reading anything (the forms' validate-as-you-type). Sites are not checked."""
    errors: dict[str, list[str]] = {}
    resource_type = type.strip() if isinstance(type, str) else ""
    if name is not UNSET:
        _clean_name(name, errors)
    if address_description is not UNSET:
        _clean_description(address_description, errors)
    if filters is not UNSET:
        _clean_filters(filters, errors)
    if resource_type not in USER_TYPES:
        errors["type"] = [MSG_BLANK if not resource_type else MSG_INVALID]
        return errors
    if address is not UNSET:
        _clean_address(resource_type, address, account, errors)
    if ip_stack is not UNSET:
        _clean_ip_stack(resource_type, ip_stack, None, errors)
    return errors


@transaction.atomic
def resource_create(
    *,
    subject: Subject,
    name: str,
    type: str,
    address: str | None = None,
    address_description: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    ip_stack: str | None = None,
    connections: Iterable[Any] = (),
) -> Resource:
    """Create a dns/ip/cidr resource connected to at least one site of the account.

    `connections` lists sites (ids, Site rows or `{"gateway_group_id": id}`). Addresses are trimmed
    and normalised (CIDRs to their network address); `ip_stack` defaults to `dual` for DNS.
    """
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    account = subject.account
    errors: dict[str, list[str]] = {}
    resource_type = type.strip() if isinstance(type, str) else ""
    clean_name = _clean_name(name, errors)
    description = _clean_description(address_description, errors)
    clean_filters = _clean_filters(filters, errors)
    clean_address = clean_stack = None
    if resource_type == Resource.Type.INTERNET:
        errors["type"] = [MSG_INTERNET_BY_SYSTEM]
    elif resource_type not in USER_TYPES:
        errors["type"] = [MSG_BLANK if not resource_type else MSG_INVALID]
    else:
        clean_address = _clean_address(resource_type, address, account, errors)
        clean_stack = _clean_ip_stack(resource_type, ip_stack, None, errors)
    sites = _clean_connections(connections, account, resource_type, errors)
    if errors:
        raise ValidationFailed(errors)

    trail = trail_for(subject)
    resource = Resource.objects.create(
        account_id=account.pk,
        type=resource_type,
        name=clean_name,
        address=clean_address,
        address_description=description,
        ip_stack=clean_stack,
        filters=clean_filters,
        **trail,
    )
    changes.inserted(resource, subject=subject)
    _connect(resource, sites, trail, subject)
    return resource


@transaction.atomic
def resource_update(
    *,
    subject: Subject,
    resource: Resource | Any,
    name: Any = UNSET,
    type: Any = UNSET,
    address: Any = UNSET,
    address_description: Any = UNSET,
    filters: Any = UNSET,
    ip_stack: Any = UNSET,
    connections: Any = UNSET,
) -> Resource:
    """Change the given fields (leave out what does not change).

    A type change re-validates the address (and drops/defaults the IP stack); `connections`
    replaces the set of sites and must stay non-empty. A changed address, type or IP stack ends the
    resource's flows; a removed site ends the flows of the resource through that site.
    """
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    resource = _load_for_update(subject, resource)
    account = subject.account
    errors: dict[str, list[str]] = {}

    new_type = resource.type
    if type is not UNSET:
        new_type = type.strip() if isinstance(type, str) else ""
        if resource.is_internet and new_type != Resource.Type.INTERNET:
            errors["type"] = [MSG_INTERNET_TYPE_FIXED]
        elif not resource.is_internet and new_type == Resource.Type.INTERNET:
            errors["type"] = [MSG_INTERNET_BY_SYSTEM]
        elif new_type not in USER_TYPES and new_type != Resource.Type.INTERNET:
            errors["type"] = [MSG_BLANK if not new_type else MSG_INVALID]
    type_changed = new_type != resource.type

    values: dict[str, Any] = {}
    if name is not UNSET:
        values["name"] = _clean_name(name, errors)
    if address_description is not UNSET:
        values["address_description"] = _clean_description(address_description, errors)
    if filters is not UNSET:
        values["filters"] = _clean_filters(filters, errors)
    if "type" not in errors:
        if address is not UNSET or type_changed:
            raw = resource.address if address is UNSET else address
            values["address"] = _clean_address(new_type, raw, account, errors)
        if ip_stack is not UNSET or type_changed:
            raw = resource.ip_stack if ip_stack is UNSET else ip_stack
            values["ip_stack"] = _clean_ip_stack(new_type, raw, resource.type, errors)
    sites: list[Site] | None = None
    if connections is not UNSET:
        sites = _clean_connections(connections, account, new_type, errors)
    if errors:
        raise ValidationFailed(errors)

    values["type"] = new_type
    destination_changed = any(
        f in values and values[f] != getattr(resource, f) for f in ("address", "type", "ip_stack")
    )
    old = changes.row_image(resource)
    for field_name, value in values.items():
        setattr(resource, field_name, value)
    resource.save()
    changes.updated(old, resource, subject=subject)
    if destination_changed:
        # Clients must re-authorise against the new destination.
        changes.delete(Flow.objects.filter(resource_id=resource.pk), subject=subject)

    if sites is not None:
        wanted = {site.pk for site in sites}
        current = list(ResourceConnection.objects.filter(resource_id=resource.pk))
        for connection in current:
            if connection.gateway_group_id not in wanted:
                _disconnect(connection, subject)
        existing = {c.gateway_group_id for c in current}
        _connect(resource, [s for s in sites if s.pk not in existing], trail_for(subject), subject)
    return resource


@transaction.atomic
def resource_delete(*, subject: Subject, resource: Resource | Any) -> Resource:
    """Hard-delete a resource with its connections, policies and flows (not the Internet one)."""
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    resource = _load_for_update(subject, resource)
    if resource.is_internet:
        raise Refused(MSG_CANT_DELETE_INTERNET, code="cant_delete_internet_resource")
    changes.delete(resource, subject=subject)
    return resource


@transaction.atomic
def resource_create_internet(*, account: Account, site: Site | None = None) -> Resource:
    """System path (sign-up, seeds): the account's Internet resource, connected to its Internet
    site. Idempotent: an existing one is returned (and connected if it was not)."""
    if site is None:
        site = Site.objects.filter(
            account_id=account.pk, name=INTERNET_SITE_NAME, managed_by=Site.ManagedBy.SYSTEM
        ).first()
        if site is None:
            raise NotFound("The account has no Internet site.")
    elif site.account_id != account.pk or not site.is_internet_site:
        raise ValidationFailed({"site": ["must be the account's Internet site"]})

    resource = Resource.objects.filter(account_id=account.pk, type=Resource.Type.INTERNET).first()
    if resource is None:
        try:
            with transaction.atomic():
                resource = Resource.objects.create(
                    account_id=account.pk,
                    type=Resource.Type.INTERNET,
                    name=INTERNET_RESOURCE_NAME,
                    address=None,
                    ip_stack=None,
                    filters=[],
                    **SYSTEM_TRAIL,
                )
        except IntegrityError:  # created concurrently (unique per account)
            return Resource.objects.get(account_id=account.pk, type=Resource.Type.INTERNET)
        changes.inserted(resource)
    if not ResourceConnection.objects.filter(resource=resource, gateway_group=site).exists():
        _connect(resource, [site], dict(SYSTEM_TRAIL), None)
    return resource
