"""Writes of the accounts app (HackSoft style), one module per entity; import from the module."""
