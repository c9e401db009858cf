"""Message bodies as HTML: escaped, newlines kept (CSS `white-space: pre-wrap`), links clickable."""
import re

from markupsafe import Markup, escape

# http(s) URLs and bare www. addresses; trailing punctuation stays outside the link.
_URL = re.compile(r"""(?i)\b((?:https?://|www\.)[^\s<>"']+[^\s<>"'.,;:!?)\]}])""")


def linkify(text):
    parts = []
    last = 0
    for match in _URL.finditer(text or ""):
        parts.append(escape(text[last:match.start()]))
        url = match.group(1)
        href = url if url.lower().startswith("http") else "https://" + url
        parts.append(Markup('<a href="{}" rel="nofollow noopener" target="_blank">{}</a>').format(href, url))
        last = match.end()
    parts.append(escape((text or "")[last:]))
    return Markup("").join(parts)
