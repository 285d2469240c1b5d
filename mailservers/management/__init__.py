"""Management commands of mail servers."""
