"""Writes of the resources app (HackSoft style), one module per entity; import from the module."""
