"""Text from the data (class names, file names, notes naming folders) inside the Markdown that the KFP UI,
TensorBoard's text plugin and the reports render: escaped, so that a name reads as the name it is."""

from __future__ import annotations

import base64
import re

# CommonMark's backslash escapes, for every character that can start or end markup inside a line or a
# table cell: emphasis, code spans, links and images ([), raw HTML, entities, cell borders, strikethrough.
# (Markup that only counts at the start of a line, # or -, cannot occur: names never start one.)
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text: markup characters backslash-escaped, control characters
    written out (\\n, \\x1b) so that they can neither break a line nor reach a terminal."""
    text = _MARKUP.sub(r"\\\1", text)
    return _CONTROL.sub(lambda m: "\\" + repr(m.group())[2:-1], text)  # after repr's own backslash


def image(alt: str, data: bytes, mime: str) -> str:
    """An image inline (a data: URI), so that the Markdown needs no file beside it."""
    return f"![{escape(alt)}](data:{mime};base64,{base64.b64encode(data).decode()})"
