"""pytest fixtures for the dns test server (filled in by its owner)."""
