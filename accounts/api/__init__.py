"""REST API endpoints of the accounts app (portal.md §5.2): one module per entity, thin layers
over the selectors and services (the same validations, limits and change recording as the
portal's pages). `firezone/api_urls.py` includes `urlpatterns`."""

from accounts.api import account, actors, groups, identities, memberships, providers

urlpatterns = [
    *account.urlpatterns,
    *actors.urlpatterns,
    *identities.urlpatterns,
    *groups.urlpatterns,
    *memberships.urlpatterns,
    *providers.urlpatterns,
]
