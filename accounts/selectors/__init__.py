"""Reads of the accounts app, scoped by subject; one module per entity."""
