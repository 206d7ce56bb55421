"""The portal's web framework, shared by every app's pages (portal.md §1, §3).

* `session`   — multi-account browser sessions, the request context, account lookup from the URL,
  and the `admin_required` / `signed_out_only` decorators (§1.1, §3.2).
* `request`   — typed requests for views: `PortalRequest` (`admin_required`: `subject`,
  `account`), `AccountRequest`, `HtmxRequest`.
* `context`   — the `portal` template context (sidebar, banners, the signed-in subject).
* `pages`     — small helpers every admin view uses (feature gates, flash-and-redirect).
* `events`    — the one dispatch of an interactive page's events (POST `action`).
* `tables`    — live tables: filters, ordering and cursor pagination.
* `ratelimit` — small fixed-window counters in the shared cache (Redis).
* `live`      — the `/live` page socket: open pages learn about changes and session revocation.
* `admin`     — Django admin helpers (read-only mixins, secret masking).

The template tags live in `firezone/templatetags/portal.py` (`{% load portal %}`).
"""
