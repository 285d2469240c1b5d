"""Outgoing transports: SMTP with password or XOAUTH2."""
