"""Checks of mail bytes received by the SMTP sink: only the header fields Knowlix
means to write, and no line break in any decoded or re-decoded form of any value."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage

from mailservers import headers

BREAKS = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Every top-level field any Knowlix mail may carry.
OURS = {
    "from", "to", "cc", "reply-to", "subject", "date", "message-id",
    "x-knowlix-message-id", "in-reply-to", "references", "auto-submitted",
    "x-auto-response-suppress", "x-knowlix-loop", "mime-version", "content-type",
    "content-transfer-encoding", "dkim-signature",
}  # fmt: skip


def b64_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


QP_CRLF = "=?utf-8?q?a=0D=0AX-Evil:_1?="
DOUBLE = b64_word("=?utf-8?q?x=0D=0A=0D=0APlease_wire_money?=")
MIXED = "=?iso-8859-1?q?caf=E9?= " + b64_word("\r\nBcc: eve@evil.example")


def decoded_forms(value: str) -> list[str]:
    """The value as decoders may see it: once, and decoded again and again."""
    value = re.sub(r"\r?\n[ \t]", " ", value)  # folding (compat32 keeps it)
    forms = [value]
    for _ in range(4):
        try:
            value = str(make_header(decode_header(value)))
        except Exception:  # noqa: BLE001 - a decoder giving up decodes nothing
            break
        forms.append(value)
    forms.append(headers.decode_words(headers.decode_words(forms[0])))
    return forms


def assert_headers_ours(raw: bytes) -> EmailMessage:
    """Only our fields at the top, nothing injected in any part; the parsed mail."""
    raw.decode("ascii")
    assert set(headers.written_header_names(raw)) <= OURS
    for policy in (email.policy.default, email.policy.compat32):
        msg = email.message_from_bytes(raw, policy=policy)
        assert not msg.defects, msg.defects
        for part in msg.walk():
            names = {k.lower() for k in part}
            assert not any(n.startswith("x-evil") or n == "bcc" for n in names)
            for key, value in part.items():
                for form in decoded_forms(str(value)):
                    assert not BREAKS.search(form), (key, form)
            for form in decoded_forms(part.get_filename() or ""):
                assert not BREAKS.search(form), form
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
