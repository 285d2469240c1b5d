"""Knowlix core pages: home, records, contacts, settings and the technical menu."""
