"""Regenerate the machine-made part of the .eml corpus (deterministic).

Run: .venv/bin/python tests/data/generate_corpus.py. Writes corpus/gen_*.eml: shapes no
one writes by hand (deep nesting, hundreds of parts, huge headers, binary noise).
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

OUT = Path(__file__).parent / "corpus"
HEAD = b"From: gen@client.example.org\r\nTo: helpdesk@example.com\r\n"


def nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain; charset=utf-8\r\n\r\ninnermost text\r\n"
    for level in range(depth):
        b = b"n%d" % level
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + body
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return HEAD + b"Subject: nested %d\r\nMIME-Version: 1.0\r\n" % depth + body


def many_parts(count: int) -> bytes:
    parts = [b"--mp\r\nContent-Type: text/plain\r\n\r\nbody\r\n"]
    for i in range(count):
        parts.append(
            b"--mp\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="f%d.bin"\r\n\r\n%d\r\n'
            % (i, i)
        )
    return (
        HEAD + b"Subject: many parts\r\nMessage-ID: <many-parts@gen>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="mp"\r\n\r\n'
        + b"".join(parts)
        + b"--mp--\r\n"
    )


def main() -> None:
    rng = random.Random(8)
    files = {
        "gen_nested_40.eml": nested(40),
        "gen_nested_3000.eml": nested(3000),
        "gen_many_parts_600.eml": many_parts(600),
        "gen_references_200.eml": HEAD
        + b"Subject: long thread\r\nMessage-ID: <refs-200@gen>\r\nReferences:"
        + b"".join(b"\r\n <ref-%d@elsewhere.example>" % i for i in range(200))
        + b"\r\n\r\nbody\r\n",
        "gen_binary_noise.eml": bytes(rng.randrange(256) for _ in range(4096)),
        "gen_binary_after_headers.eml": HEAD
        + b"Subject: binary body\r\nMessage-ID: <bin-body@gen>\r\n\r\n"
        + bytes(rng.randrange(256) for _ in range(4096)),
        "gen_truncated_base64.eml": HEAD
        + b"Subject: truncated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
        b'boundary="t"\r\n\r\n--t\r\nContent-Type: text/plain\r\n\r\nhi\r\n--t\r\n'
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(bytes(range(256)) * 8)[:700],
        "gen_huge_html.eml": HEAD
        + b"Subject: huge html\r\nMessage-ID: <huge-html@gen>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>"
        + b"<div><p>row <b>bold</b> <i>it</i></p></div>\r\n" * 13000
        + b"</body></html>\r\n",
        "gen_long_header_line.eml": HEAD
        + b"Subject: "
        + b"x" * 12000
        + b"\r\nMessage-ID: <long-header@gen>\r\n\r\nbody\r\n",
        "gen_300_recipients.eml": b"From: gen@client.example.org\r\nTo: "
        + b",\r\n ".join(b"user%d@client.example.org" % i for i in range(300))
        + b"\r\nCc: helpdesk@example.com\r\nSubject: crowd\r\n"
        b"Message-ID: <crowd@gen>\r\n\r\nbody\r\n",
        "gen_headers_only_no_blank.eml": HEAD
        + b"Subject: no body separator\r\nMessage-ID: <no-sep@gen>",
        "gen_header_without_colon.eml": HEAD
        + b"Subject: junk header line\r\nThis line has no colon\r\n"
        + b"X-After: 1\r\n\r\nb\r\n",
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
