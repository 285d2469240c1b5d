"""The sanitizer and the plain-text rendering of bodies (no database)."""

from __future__ import annotations

import pytest

from knowlix.html import html_to_text, sanitize_html, text_to_html

# Each payload must come out inert: no script, no handler, no active URL.
XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<img src="javascript:alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">encoded</a>',
    '<a href="  javascript:alert(1)">spaces</a>',
    '<a href="vbscript:msgbox(1)">vb</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">',
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<div style="width: expression(alert(1))">css</div>',
    '<div style="background:url(javascript:alert(1))">css</div>',
    '<p style="behavior: url(x.htc)">htc</p>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<form action="https://evil.example"><input name=x><button>go</button></form>',
    '<body onload="alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<<script>script>alert(1)<</script>/script>",
    '<img """><script>alert(1)</script>">',
    '<a href="https://ok.example" onmouseover="alert(1)">hover',
    "<p>unclosed <b>bold <i>italic",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    '<details open ontoggle="alert(1)">x</details>',
    '<video><source onerror="alert(1)"></video>',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]

ACTIVE = [
    "<script",
    "onerror",
    "onload",
    "onmouseover",
    "ontoggle",
    "javascript:",
    "vbscript:",
    "data:",
    "expression(",
    "<iframe",
    "<object",
    "<embed",
    "<svg",
    "<math",
    "<style",
    "<form",
    "<meta",
    "<base",
    "<link",
    "behavior",
    "url(",
]


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_xss_payload_comes_out_inert(payload):
    """No tag, attribute or URL that can run code survives the sanitizer."""
    clean = sanitize_html(payload).lower()
    for marker in ACTIVE:
        assert marker not in clean, (payload, clean)


def test_rich_text_is_kept():
    """Ordinary formatting, tables and https links survive."""
    html = (
        '<p>Hello <strong>Dana</strong>, <em>see</em> <a href="https://x.example/a">'
        "this</a></p><ul><li>one</li></ul><table><tr><td>1</td></tr></table>"
    )
    clean = sanitize_html(html)
    assert "<strong>Dana</strong>" in clean
    assert '<a href="https://x.example/a" rel="noopener noreferrer">this</a>' in clean
    assert "<li>one</li>" in clean and "<td>1</td>" in clean


def test_images_only_from_https_or_cid():
    """Inline images keep cid: and https: sources; http: and data: are dropped."""
    clean = sanitize_html(
        '<img src="cid:logo@x"><img src="https://cdn.example/a.png">'
        '<img src="http://tracker.example/p.gif"><img src="data:image/png;base64,AA">'
    )
    assert 'src="cid:logo@x"' in clean
    assert 'src="https://cdn.example/a.png"' in clean
    assert "tracker" not in clean and "data:" not in clean


def test_safe_styles_are_kept():
    """Colours survive; positioning does not."""
    clean = sanitize_html('<span style="color: red; position: fixed">x</span>')
    assert "color:red" in clean.replace(" ", "")
    assert "position" not in clean


def test_html_to_text_keeps_structure():
    """Paragraphs, list items and link targets come through as text."""
    text = html_to_text(
        "<p>Hello <b>Dana</b></p><ul><li>one</li><li>two</li></ul>"
        '<p><a href="https://x.example">site</a></p><script>nope()</script>'
    )
    assert text.splitlines()[0] == "Hello Dana"
    assert "- one\n- two" in text
    assert "site <https://x.example>" in text
    assert "nope" not in text


def test_text_to_html_escapes():
    """Plain text becomes escaped paragraphs."""
    assert text_to_html("a <b>\nc\n\nd") == "<p>a &lt;b&gt;<br>c</p><p>d</p>"
