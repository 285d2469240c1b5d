"""What every server page, incoming or outgoing, must show: one structure, one vocabulary.

Both tests/mailservers/test_incoming_views.py and test_outgoing_views.py run a real
server through these checks, so the two kinds cannot drift apart again.
"""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

LIST_COLUMNS = [
    "Name",
    "Type",
    "Server",
    "Login",
    "Details",
    "State",
    "Last success",
    "Last error",
]
DETAIL_LABELS = ["Type", "Server", "Login", "Last success"]
ACTIONS = ["Test connection", "Edit", "Delete"]


def texts(pattern: str, html: str) -> list[str]:
    """The stripped text inside each match of ``pattern``'s one group."""
    found = re.findall(pattern, html, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", t).split()) for t in found]


def block(html: str, marker: str, end: str = "</div>") -> str:
    assert marker in html, f"{marker} missing"
    return html.split(marker, 1)[1].split(end, 1)[0]


def check_list(client: Client, kind: str, name: str) -> None:
    html = client.get(reverse(f"mailservers:{kind}-list")).text
    table = block(html, 'class="table server-list"', "</table>")
    assert texts(r"<th>(.*?)</th>", table) == LIST_COLUMNS
    assert name in table and "server-state" in table


def check_detail(
    client: Client, kind: str, pk: int, *, extra_actions: list[str]
) -> str:
    """The detail page's labels and actions; returns the page."""
    html = client.get(reverse(f"mailservers:{kind}-detail", args=[pk])).text
    detail = block(html, 'data-test="server-detail"', "</dl>")
    labels = texts(r"<dt>(.*?)</dt>", detail)
    assert [x for x in labels if x in DETAIL_LABELS] == DETAIL_LABELS, labels
    actions = block(html, 'data-test="server-actions"')
    words = texts(r"<(?:button|a)\b[^>]*>(.*?)</(?:button|a)>", actions)
    assert words == ACTIONS[:1] + extra_actions + ACTIONS[1:], words
    assert f'href="{reverse(f"mailservers:{kind}-edit", args=[pk])}"' in actions
    assert f'href="{reverse(f"mailservers:{kind}-delete", args=[pk])}"' in actions
    assert 'id="test-connection"' in actions and "server-state" in html
    return html


def check_failed_test(client: Client, kind: str, pk: int, endpoint: str) -> None:
    """A failed test: flash "Test failed: …", the last error block with host:port."""
    page = client.post(reverse(f"mailservers:{kind}-test", args=[pk]), follow=True).text
    assert "Test failed: " in page
    error = block(page, 'data-test="last-error"')
    assert 'badge badge-err">Last error<' in error
    assert f'<code class="server-endpoint">{endpoint}</code>' in error


def check_edit_and_delete(client: Client, kind: str, pk: int, name: str) -> None:
    edit = client.get(reverse(f"mailservers:{kind}-edit", args=[pk])).text
    assert f"Edit {name}" in texts(r"<h1>(.*?)</h1>", edit)[0]
    assert texts(r'<div class="form-actions">(.*?)</div>', edit)[-1] == "Save Cancel"
    url = reverse(f"mailservers:{kind}-delete", args=[pk])
    confirm = client.get(url).text
    assert f"Delete {name}?" in confirm and 'data-test="confirm-delete"' in confirm
    done = client.post(url, follow=True).text
    assert f"Server {name} deleted." in done
