"""pytest fixtures for the oauth test server (filled in by its owner)."""
