"""Portal views, one module per flow."""
