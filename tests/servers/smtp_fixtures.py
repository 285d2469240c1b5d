"""pytest fixtures for the smtp test server (filled in by its owner)."""
