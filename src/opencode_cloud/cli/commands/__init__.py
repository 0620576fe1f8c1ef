"""One module per user-facing command (or command group)."""
