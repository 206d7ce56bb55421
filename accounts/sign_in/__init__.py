"""Sign-in plumbing of the identity pages (portal.md §3).

* `params` — the four sign-in parameters carried through every step (§3.3).
* `flow`   — what happens after a successful authentication (§3.9, §3.10).
* `logout` — the identity provider's end-session URL at sign-out (§3.12).
"""
