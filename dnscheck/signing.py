"""DKIM signing of outgoing mail, below the outgoing queue.

The queue calls :func:`dkim_sign` on every mail it builds; it reads the active key
and the verified sending domains and never raises: a mail that cannot be signed
leaves unsigned (the error is logged). Checking domains is ``dnscheck.services``.
"""

from __future__ import annotations

import logging

import dkim

from dnscheck.checks import normalize_domain
from dnscheck.models import DkimKey, SendingDomain
from knowlix.crypto import DecryptionError

logger = logging.getLogger(__name__)

# Signed when present, beside dkimpy's defaults (which have List-Unsubscribe):
# RFC 8058 wants both one-click unsubscribe fields covered by the signature.
EXTRA_SIGNED = (b"list-unsubscribe-post",)


def get_active_dkim_key() -> DkimKey | None:
    return DkimKey.objects.filter(is_active=True).first()


def find_signing_domain(from_domain: str) -> str | None:
    """The verified sending domain for ``from_domain``: itself, else a parent."""
    name = normalize_domain(from_domain.rpartition("@")[2])
    labels = name.split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    verified = set(
        SendingDomain.objects.filter(
            name__in=candidates, is_dkim_verified=True
        ).values_list("name", flat=True)
    )
    return next((c for c in candidates if c in verified), None)


def dkim_sign(raw: bytes, from_domain: str) -> bytes:
    """``raw`` with a DKIM-Signature header prepended, or unchanged when the domain
    (or its parent) is not verified for DKIM, or no key exists."""
    signing_domain = find_signing_domain(from_domain)
    if signing_domain is None:
        return raw
    linesep = b"\r\n" if b"\r\n" in raw else b"\n"
    try:
        key = get_active_dkim_key()
        if key is None:
            return raw
        signer = dkim.DKIM(raw, linesep=linesep)
        signer.should_sign.update(EXTRA_SIGNED)
        signature = signer.sign(
            key.selector.encode(), signing_domain.encode(), key.private_key.encode()
        )
    except (dkim.DKIMException, DecryptionError, ValueError) as exc:
        # Our configuration (key unreadable) or a mail dkimpy refuses: send unsigned.
        logger.error("DKIM signing for %s failed: %s", signing_domain, exc)
        return raw
    return signature + raw
