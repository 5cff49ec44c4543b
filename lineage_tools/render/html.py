"""The report as one self-contained HTML page: template, CSS and JavaScript shipped in
`render/assets/`, the report data embedded as JSON. No network: it works from a file:// URL.

Every name from the project reaches the page as JSON data and is inserted with textContent;
the JSON is escaped so that no name can close the <script> tag that holds it.

>>> embed_json({"name": "</script><script>alert(1)</script>"})
'{"name": "\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def asset(name: str) -> str:
    """A file of `render/assets/` (shipped as package data)."""
    return resources.files("lineage_tools.render").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no `<`, `>`, `&` or line separators."""
    text = json.dumps(data, ensure_ascii=False, separators=(", ", ": "), sort_keys=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(a, b)
    return text


def render(report: dict[str, Any]) -> str:
    """The page for a report document (see `report.build_report`)."""
    name = str((report.get("project") or {}).get("name") or "project")
    page = asset("page.html")
    # data last: nothing inside it is ever read as a placeholder
    parts = {
        "__TITLE__": html.escape(f"Lineage: {name}"),
        "__CSS__": asset("style.css"),
        "__JS__": asset("app.js").replace("</", "<\\/"),
    }
    for k, v in parts.items():
        page = page.replace(k, v)
    head, _, tail = page.partition("__DATA__")
    return head + embed_json(report) + tail
