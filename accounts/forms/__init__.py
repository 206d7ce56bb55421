"""Portal forms, one module per flow."""
