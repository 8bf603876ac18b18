"""What counts as text at all: one notion of "blank" for the API, the file path and the corpus."""
from __future__ import annotations

import re

# Characters that show nothing: whitespace (listed beyond \s where Python's and ECMAScript's \s differ, as the
# OpenAPI schema's readers use the latter), NUL, and the format characters of Unicode that have no glyph:
# soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width space / joiners, bidi marks and
# embeddings, word joiner and invisible operators, bidi isolates, byte-order mark.
INVISIBLE = (r"\s\u0000\u001c-\u001f\u0085\u00ad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e"
             r"\u2060-\u2064\u2066-\u206f\ufeff")
VISIBLE = rf"[^{INVISIBLE}]"
_VISIBLE = re.compile(VISIBLE)


def is_blank(text: str) -> bool:
    """True for text with no visible character: empty, whitespace, or zero-width characters alone."""
    return _VISIBLE.search(text) is None
