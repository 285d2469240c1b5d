"""Real loopback servers the test suite starts itself (SMTP, Dovecot, DNS, OAuth2, ...)."""
