"""REST API endpoints of the gateways app (portal.md §5.2 rows 2-7, 18-28): one module per
entity, thin layers over the selectors and services. `firezone/api_urls.py` includes
`urlpatterns`."""

from gateways.api import clients, gateway_groups, gateways

urlpatterns = [*clients.urlpatterns, *gateway_groups.urlpatterns, *gateways.urlpatterns]
