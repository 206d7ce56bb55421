"""Admin pages: actors (portal.md §4.5), one module per page group: `index` (the list),
`new` (the "Add Actor" wizard), `detail` (the actor page and its events), `edit` (the edit and
group memberships pages); `common` holds what they share."""
