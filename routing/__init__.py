"""Routing of incoming mail: parse raw RFC 5322 bytes and decide where they belong."""
