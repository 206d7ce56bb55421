"""Admin pages: Settings → Identity Providers (portal.md §4.13), one module per page group:
`index` (the list and the default provider), `form` (the adapter chooser and the new/edit forms),
`detail` (the provider pages and their events), `connect` (the OAuth consent flow); `common`
holds the URLs and status rendering they share."""
