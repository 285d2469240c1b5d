"""Incoming fetchers: IMAP (imapclient) and POP3 (poplib)."""
