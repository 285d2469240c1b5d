"""pytest fixtures for the celery test server (filled in by its owner)."""
