"""Portal plumbing shared by the sign-in, sign-up and admin views (portal.md §1, §3).

* `params`  — the four sign-in parameters carried through every step (§3.3).
* `session` — multi-account browser sessions, the request context, account lookup from the URL,
  and the `admin_required` / `signed_out_only` decorators (§1.1, §3.2).
* `flow`    — what happens after a successful authentication (§3.9, §3.10).
* `logout`  — the identity provider's end-session URL at sign-out (§3.12).
* `ratelimit` — small fixed-window counters in the shared cache (Redis).
"""
