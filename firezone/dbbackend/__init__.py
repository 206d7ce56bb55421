"""PostgreSQL backend of the project: Django's own, plus the change-log flush after each commit."""
