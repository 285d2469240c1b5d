"""Oauth mail server models (owned by the oauth side)."""
