"""OAuth2 provider clients for Outlook 365 (msal) and Gmail (google-auth-oauthlib).

The clients talk HTTP to the provider and nothing else (no ORM, no request); only
``config`` reads the registrations from system parameters. The
grant rows, locking and state live in ``mailservers.services.oauth``.
"""
