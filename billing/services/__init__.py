"""Billing writes (billing_sync_jobs.md §1): one module per concern."""
