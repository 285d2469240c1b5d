"""Signed unsubscribe links of mailings (RFC 8058 one-click and the footer link).

A token names one recipient address (normalized) and the mailing whose link it
is (for its statistics), and is signed with the site's
``SECRET_KEY`` under its own salt, so it cannot be forged, nor made from another
signed value of the site. It does not expire: an old mailing's link must still
work. Cheap: one HMAC-SHA256 per address (a mailing signs one per recipient).
Pure apart from settings: no ORM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

from knowlix.models import normalize_email

SALT = "knowlix.mailing.unsubscribe"
PATH = "/unsubscribe/"  # knowlix.urls serves PATH + "<token>/"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT, algorithm="sha256")


class UnsubscribeLinks:
    """Makes the links of a mailing's recipients: the signer's key, its keyed
    HMAC state and the base URL once, then one HMAC per address (the same
    signature as ``_signer().sign``: Django derives the key from the salt and
    ``SECRET_KEY`` anew for each value, two more hashes each)."""

    def __init__(self, *, mailing_id: int) -> None:
        signer = _signer()
        key = hashlib.sha256(
            force_bytes(SALT + "signer") + force_bytes(signer.key)
        ).digest()
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        self._sep = signer.sep
        self._base = settings.KNOWLIX_BASE_URL.rstrip("/") + PATH
        self._mailing = int(mailing_id)

    def token(self, address: str) -> str:
        """``<base64url of the address>.<mailing id>:<signature>`` (URL- and
        header-safe: letters, digits, ``-_.:``)."""
        raw = normalize_email(address).encode("utf-8")
        encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        value = f"{encoded}.{self._mailing}"
        mac = self._hmac.copy()
        mac.update(value.encode("utf-8"))
        signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")
        return f"{value}{self._sep}{signature.decode('ascii')}"

    def url(self, address: str) -> str:
        return f"{self._base}{self.token(address)}/"


def read_token(token: str) -> tuple[str, int] | None:
    """(address, mailing id) of a token, or None when it is forged, damaged or
    made for something else."""
    try:
        encoded, _dot, mailing = _signer().unsign(token).rpartition(".")
        padded = encoded + "=" * (-len(encoded) % 4)
        address = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        mailing_id = int(mailing)
    except (signing.BadSignature, binascii.Error, UnicodeError, ValueError):
        return None
    return (address, mailing_id) if "@" in address else None
