"""pytest fixtures for the browser test server (filled in by its owner)."""
