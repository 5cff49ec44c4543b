"""Safe Markdown pieces: names from a project become inert text in GitHub Markdown and Mermaid:
no HTML, no Markdown syntax, and no @mention, issue reference or autolink that would fire.

>>> code("a`b")
'`` a`b ``'
>>> code("<script>")
'`<script>`'
>>> text("<b>*x*</b>")
'&lt;b&gt;\\\\*x\\\\*&lt;/b&gt;'
>>> text("ping @team about #123, see https://x.example or www.x.example")
'ping @<!-- -->team about #<!-- -->123, see https:<!-- -->//x.example or www<!-- -->.x.example'
>>> mermaid_label('a "b" <c>')
'"a #quot;b#quot; #lt;c#gt;"'
>>> plural(1, "model"), plural(2, "model")
('1 model', '2 models')
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# What GitHub turns into a live link or a notification in plain text (not in code spans): an
# @mention (or an e-mail address), an issue reference (#12, GH-12), a URL. An empty HTML comment
# after the trigger splits the text node, so nothing fires and the reader sees the same text.
_LIVE = re.compile(r"(@)(?=\w)|(#)(?=\d)|\b(GH)(?=-\d)|(:)(?=//)|\b(www)(?=\.)", re.I)
_BREAK = "<!-- -->"


def _oneline(s: str) -> str:
    return " ".join(str(s).split()) if any(c in str(s) for c in "\r\n\t") else str(s)


def code(s: str, in_table: bool = False) -> str:
    """`s` as an inline code span: shown literally (HTML too), whatever backticks it holds."""
    s = _oneline(s)
    if in_table:
        s = s.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or s.startswith(" ") or s.endswith(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def text(s: str) -> str:
    """`s` as plain Markdown text: HTML and Markdown syntax escaped."""
    s = _oneline(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LIVE.sub(lambda m: m.group(0) + _BREAK, _SPECIAL.sub(r"\\\1", s))


def mermaid_label(s: str) -> str:
    """A quoted Mermaid node label that cannot close the quote or inject HTML."""
    s = _oneline(s)
    for a, b in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;")):
        s = s.replace(a, b)
    # '#35;' itself starts with '#': it was replaced first, so later entities stay intact
    return f'"{s}"'


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
