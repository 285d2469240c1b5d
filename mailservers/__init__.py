"""Mail servers: outgoing SMTP/OAuth backends and the queue, incoming IMAP/POP3 pollers."""
