"""Admin page action: "Sync now" on a directory-sync provider's page (billing_sync_jobs.md §2.2).

POST only (CSRF-protected like every portal form), admins only (others get the standard 404).
It queues a run that skips the back-off — never the rest of the selection predicate: a disabled
provider, or one whose sync the IdP refused (reconnect to resume), is refused with an error
flash. The run itself happens in the "sync" queue's worker; the page shows its result when
reloaded.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_POST

from accounts.models import Account, AuthProvider
from accounts.selectors.providers import provider_get_for_adapter
from directory_sync.tasks import enqueue_sync_now
from firezone.errors import NotFound
from firezone.web.pages import account_url, redirect_error, redirect_info
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

MSG_SYNC_QUEUED = "Directory sync has been queued; reload this page in a minute to see its result."
MSG_PROVIDER_DISABLED = "This provider is disabled: enable it to sync its directory."
MSG_SYNC_PAUSED = (
    "Directory sync is paused because the IdP refused the credentials: reconnect the provider "
    "to resume it."
)


@admin_required
@require_POST
def provider_sync_now(
    request: PortalRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    provider = provider_get_for_adapter(request.subject, provider_id=id, adapter=adapter)
    if provider.provisioner != AuthProvider.Provisioner.CUSTOM:
        raise NotFound()
    here = account_url(account, "identity_provider", adapter=provider.adapter, id=provider.pk)
    if provider.is_disabled:
        return redirect_error(request, here, MSG_PROVIDER_DISABLED)
    if provider.sync_disabled_at is not None:
        return redirect_error(request, here, MSG_SYNC_PAUSED)
    enqueue_sync_now(str(provider.pk))
    return redirect_info(request, here, MSG_SYNC_QUEUED)
