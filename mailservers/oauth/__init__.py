"""OAuth2 provider clients for Outlook 365 (msal) and Gmail (google-auth-oauthlib).

These modules talk HTTP to the provider and nothing else: no ORM, no request. The
grant rows, locking and state live in ``mailservers.services.oauth``.
"""
