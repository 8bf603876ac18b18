"""Where a film stands in its series, read from its title: "Terminator 2: Judgment Day" is number 2 of "terminator",
"Rocky IV" number 4 of "rocky", "Star Wars: The Last Jedi" of "star wars" with the subtitle "the last jedi", "Ride
Along" the first of "ride along" (no number). Two films of one series share their series name; a text that names a
series with a number ("… in Terminator 2 …", "Ride Along 2") names that film's place in it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from service.films import normalise_title

# a subtitle follows a colon or a spaced dash; "Episode IV - A New Hope" keeps its number
_SUBTITLE = re.compile(r"\s*(?::|\s[-–—]\s|\()\s*")
_ROMAN = {"ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_NUMBER = rf"(\d{{1,2}}|{'|'.join(sorted(_ROMAN, key=len, reverse=True))})"
_TRAILING_NUMBER = re.compile(rf"^(?P<base>.+?)\s+{_NUMBER}$")
# "part 2", "chapter ii", "episode iv", "teil 2", "partie 2", "capitulo 3": a number named as one
_NAMED_NUMBER = re.compile(rf"\b(?:part|chapter|episode|teil|kapitel|partie|chapitre|capitulo|capítulo|parte|"
                           rf"vol|volume)\s+{_NUMBER}\b")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
MAX_POSITION = 20  # "Blade Runner 2049", "Death Race 2000": a larger number is part of the name


@dataclass(frozen=True)
class Position:
    series: str             # the series name, normalised, without a leading English article
    number: int | None      # its place in the series, when the title says (2 and up; 1 only as "part 1")
    subtitle: str = ""      # normalised

    @property
    def first(self) -> bool:
        """A title with neither number nor subtitle: the series' first film, or a film of no series."""
        return self.number is None and not self.subtitle


def _number(token: str) -> int | None:
    value = int(token) if token.isdigit() else _ROMAN.get(token)
    return value if value is not None and 1 <= value <= MAX_POSITION else None


def position_of(title: str) -> Position:
    head, *rest = _SUBTITLE.split(title, maxsplit=1)
    head, subtitle = normalise_title(head), normalise_title(rest[0]) if rest else ""
    number = None
    if named := _NAMED_NUMBER.search(subtitle) or _NAMED_NUMBER.search(head):
        number = _number(named.group(1))
    if (trailing := _TRAILING_NUMBER.match(head)) and (value := _number(trailing.group(2))):
        head, number = trailing.group("base"), value
    elif subtitle and (trailing := _TRAILING_NUMBER.match(subtitle)) is None and (value := _number(subtitle)):
        subtitle, number = "", value  # "Rocky: II" is rare, "Alien: 3" is not
    series = _LEADING_ARTICLE.sub("", head) or head
    return Position(series, number, subtitle)


def one_series(a: Position, b: Position) -> bool:
    return bool(a.series) and a.series == b.series


def numbers_named(text: str, series: str) -> set[int]:
    """The numbers the text gives the series: "Ride Along 2", "terminator ii" (normalised text and series)."""
    if not series:
        return set()
    found, padded, needle, start = set(), f" {text} ", f" {series} ", 0
    while (at := padded.find(needle, start)) >= 0:
        following = padded[at + len(needle):].split(" ", 1)[0]
        if (number := _number(following)) is not None:
            found.add(number)
        start = at + 1
    return found
