"""An HTTP client that stands where the TLS proxy of docs/deploy.md stands.

It talks plain HTTP to gunicorn on loopback and adds what the proxy adds
(``X-Forwarded-Proto: https``, the public ``Host``), so Django sees the HTTPS site
an operator runs. Forms are read from the page's HTML and sent back as a browser
would (hidden fields and CSRF token included, the page's ``Origin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self.forms[-1].fields[a["name"]] = a.get(
                    "value", "on" if kind == "checkbox" else ""
                )
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            fields = self.forms[-1].fields
            if "selected" in a or self._select not in fields:
                fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.forms[-1].fields[self._textarea or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1].fields[self._textarea] += data


def find_form(
    html: str,
    *,
    action: str = "",
    having: str = "",
    where: dict[str, str] | None = None,
) -> Form:
    """The page's first form whose action contains ``action``, with a field named
    ``having`` and the field values ``where``."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if action not in form.action or (having and having not in form.fields):
            continue
        if all(form.fields.get(k) == v for k, v in (where or {}).items()):
            return form
    raise AssertionError(f"no form {action=} {having=} {where=} in:\n{html[:3000]}")


class ProxiedClient:
    """A browser behind the TLS proxy: ``get``/``post`` take site paths."""

    def __init__(self, upstream: str, public_host: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.public_host = public_host
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers.update(
            {"Host": public_host, "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": public_host}
        )  # fmt: skip

    def url(self, path: str) -> str:
        path = re.sub(rf"^https://{re.escape(self.public_host)}", "", path)
        return self.upstream + path

    def get(self, path: str, **kw: object) -> requests.Response:
        return self._send("GET", path, **kw)

    def post(self, path: str, data: dict[str, str], **kw: object) -> requests.Response:
        headers = {"Origin": f"https://{self.public_host}", **kw.pop("headers", {})}  # type: ignore[dict-item]
        return self._send("POST", path, data=data, headers=headers, **kw)

    def _send(self, method: str, path: str, **kw: object) -> requests.Response:
        """Follow redirects by hand: the browser got Secure cookies over HTTPS, and
        the proxy passes them on, though the hop to gunicorn is plain HTTP."""
        url = self.url(path)
        for _hop in range(10):
            response = self.http.request(
                method,
                url,
                allow_redirects=False,
                timeout=60,
                **kw,  # type: ignore[arg-type]
            )
            for cookie in self.http.cookies:
                cookie.secure = False
            if not response.is_redirect:
                return response
            url = urljoin(url, self.url(response.headers["Location"]))
            method, kw = "GET", {"headers": kw.get("headers", {})}
        raise AssertionError(f"too many redirects from {path}")

    def submit(
        self,
        page_path: str,
        values: dict[str, str],
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        **which: object,
    ) -> requests.Response:
        """Open ``page_path``, fill its form (see :func:`find_form`), send it."""
        page = self.get(page_path)
        assert page.status_code == 200, (page.status_code, page.text[:2000])
        form = find_form(page.text, **which)  # type: ignore[arg-type]
        return self.post(
            form.action or page_path, {**form.fields, **values}, files=files
        )
