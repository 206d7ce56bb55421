"""REST API endpoints of the resources app (portal.md §5.2): one module per entity, thin layers
over the selectors and services (the same validations, limits and change recording as the
portal's pages). `firezone/api_urls.py` includes `urlpatterns`."""

from resources.api import access, policies, resources

urlpatterns = [*resources.urlpatterns, *policies.urlpatterns, *access.urlpatterns]
