"""JumpCloud's "Setup Sync" / "Edit Sync" (billing_sync_jobs.md §2.11): make sure the provider
has a WorkOS organisation, then ask WorkOS for an admin-portal link where the admin connects
JumpCloud's SCIM to a WorkOS directory.

1. `adapter_config.workos_org.id` set → `GET /organizations/<id>`; otherwise
   `POST /organizations {"name": "<provider id>"}` and the organisation is stored in
   `adapter_config.workos_org` (the other config keys kept).
2. `POST /portal/generate_link {"organization", "intent": "dsync", "success_url"}` → the link.

The WorkOS calls happen outside any transaction; only storing the organisation writes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from workos import WorkOSError

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import AuthProvider
from directory_sync.workos import workos_client
from firezone import changes
from firezone.errors import Refused
from firezone.lookup import get_or_not_found

logger = logging.getLogger(__name__)

MSG_WORKOS_FAILED = "Error connecting to WorkOS"


class WorkOSSetupFailed(Refused):
    """Error connecting to WorkOS"""


def provider_workos_portal_link_create(
    *, subject: Subject, provider: AuthProvider, success_url: str
) -> str:
    """The WorkOS admin-portal link (directory-sync intent) for the provider's organisation,
    created first when the provider has none (`provider:manage`). `WorkOSNotConfigured` without
    a WorkOS API key, `WorkOSSetupFailed` when WorkOS fails."""
    ensure_permissions(subject, P.PROVIDER_MANAGE)
    provider = get_or_not_found(AuthProvider, provider, account_id=subject.account_id)
    org = (provider.adapter_config or {}).get("workos_org") or {}
    org_id = org.get("id") if isinstance(org, dict) else None
    with workos_client() as client:
        try:
            if org_id:
                organization = client.organizations.get_organization(str(org_id))
            else:
                organization = client.organizations.create_organization(name=str(provider.pk))
                _provider_workos_org_store(
                    subject=subject, provider=provider, org=organization.to_dict()
                )
            link = client.admin_portal.generate_link(
                organization=organization.id, intent="dsync", success_url=success_url
            )
        except WorkOSError as exc:
            logger.warning("WorkOS setup of provider %s failed: %s", provider.pk, exc)
            raise WorkOSSetupFailed(MSG_WORKOS_FAILED) from exc
    return link.link


@transaction.atomic
def _provider_workos_org_store(
    *, subject: Subject, provider: AuthProvider, org: dict[str, Any]
) -> None:
    """Merge the organisation into the stored config (other keys as they are in the DB now)."""
    locked = get_or_not_found(
        AuthProvider, provider, account_id=subject.account_id, for_update=True
    )
    old = changes.row_image(locked)
    locked.adapter_config = {**(locked.adapter_config or {}), "workos_org": org}
    locked.save(update_fields=["adapter_config", "updated_at"])
    changes.updated(old, locked, subject=subject)
