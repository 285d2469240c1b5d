"""pytest fixtures for the dovecot test server (filled in by its owner)."""
