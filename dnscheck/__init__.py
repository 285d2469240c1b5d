"""DNS authentication checks (SPF, DKIM, DMARC) and DKIM signing keys."""
