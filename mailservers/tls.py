"""The one TLS policy of every mail connection (SMTP, IMAP, POP3).

The system's CAs are always trusted; ``ca_file`` (``KNOWLIX_MAIL_CA_FILE``: a private
CA, the tests' CA) is trusted *in addition*, never instead.
"""

from __future__ import annotations

import ssl


def mail_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context
