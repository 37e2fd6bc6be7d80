"""What every voiceprobe HTML report shares: the escaping of untrusted text, a Content
Security Policy that forbids every script and every fetch, and print rules.

A report is one file that opens offline: styles are inline, charts are inline SVG and
audio clips are ``data:`` URIs. The policy below makes the browser refuse anything else
(a script, a remote image, a stylesheet from elsewhere), so even text that slipped through
unescaped could neither run nor call out.
"""

from __future__ import annotations

import html

from app.textsafe import printable

#: The page's policy: no script, no connection; styles, images and media only inline.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src data:; "
    "form-action 'none'; base-uri 'none'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
#: Printing: no margins of our own, keep a turn or a table row on one page, hide players.
PRINT_CSS = (
    "@media print{body{margin:0;font-size:11px}h2,h3{break-after:avoid}"
    ".turn,tr,svg{break-inside:avoid}audio{display:none}.noprint{display:none}}"
)


def esc(value: object) -> str:
    r"""Untrusted ``value`` as HTML text: control and bidi characters shown as escapes
    (``\u202e``), lone surrogates as U+FFFD, then HTML-escaped (quotes too, so it is safe
    in an attribute)."""
    return html.escape(printable(value, multiline=True), quote=True)
