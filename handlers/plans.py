"""Plan submission, edit and confirm."""
