"""Billing reads (billing_sync_jobs.md §1): one module per concern."""
