"""The REST API's framework (portal.md §5): what every endpoint shares.

* `middleware` — requests to the API origin (`API_EXTERNAL_URL`) are routed by
  `firezone.api_urls`, at the root of that origin;
* `authentication` — `Authorization: Bearer <api_client token>` → the request's `Subject`;
* `exceptions` — every error as the §5.1 body (`{"error": {"reason": ...}}`);
* `pagination` — `limit` / `page_cursor` keyset pages with the §5.1 metadata;
* `ratelimit` — the per-account token bucket in Redis;
* `views` — the base view, the body wrapper and the `{"data": ...}` responses.

Endpoints live in each app's `api` module or package (`resources/api/resources.py`, ...), thin
like the pages: parse, call a selector or service, serialise.
"""
