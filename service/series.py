"""Where a film stands in its series, read from its title among the titles of a catalogue (the reference's):
"Terminator 2: Judgment Day" is number 2 of "terminator", "Rocky IV" number 4 of "rocky", "The Godfather Part II"
number 2 of "godfather", "It Chapter Two" number 2 of "it", "Star Wars: The Last Jedi" of "star wars" with the
subtitle "the last jedi", "Ride Along" the first of "ride along" (no number). Two films of one series share their
series name; a text that names a series with a number ("… in Terminator 2 …", "the Godfather Part II") names that
film's place in it.

A number named as one ("Part II", "Chapter Three", "Teil 2", "Vol. 1") is always a place. A number that merely ends a
title may be part of a name ("Apollo 13", "District 9", "Super 8"): it is a place only when the catalogue shows the
series around it — the series' first film ("Rocky" beside "Rocky II"), a place one or two before it, or a film
numbered next to it ("Saw IV" beside "Saw V"). "Apollo 11", "Apollo 13" and "Apollo 18" are three films of no series.
Numbers are read as digits, roman numerals, and after a word like "part" as number words of the languages num2words
knows ("two", "zwei", "deux", "второй"); a number word that ends a title is a name ("Ocean's Eleven", "Se7en").
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from service.films import normalise_title

# a subtitle follows a colon or a spaced dash; "Episode IV - A New Hope" keeps its number
_SUBTITLE = re.compile(r"\s*(?::|\s[-–—]\s|\()\s*")
MAX_POSITION = 20  # "Blade Runner 2049", "Death Race 2000": a larger number is part of the name
_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x",
          "xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx")
# a word that names the number after it as a place (normalised: accents folded), in the languages titles come in
_PLACE_WORDS = frozenset((
    "part", "chapter", "episode", "vol", "volume", "book",        # English
    "teil", "kapitel", "folge", "band",                           # German
    "partie", "chapitre", "tome", "volet",                        # French ("episode", "volume" as in English)
    "parte", "capitulo", "capitolo", "episodio", "volumen",       # Spanish, Italian, Portuguese
    "deel", "hoofdstuk", "del", "kapittel", "osa", "luku",        # Dutch, Scandinavian, Finnish
    "czesc", "rozdzial", "cast", "kapitola", "resz", "fejezet",   # Polish, Czech, Hungarian
    "часть", "глава", "серия", "частина", "bolum",                # Russian, Ukrainian, Turkish
))
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


@dataclass(frozen=True)
class Position:
    series: str             # the series name, normalised, without a leading English article
    number: int | None      # its place in the series, when the title says (2 and up; 1 only as "part 1")
    subtitle: str = ""      # normalised
    name: str = ""          # the series name as the title writes it ("The Godfather" of "The Godfather Part II")

    @property
    def first(self) -> bool:
        """A title with neither number nor subtitle: the series' first film, or a film of no series."""
        return self.number is None and not self.subtitle


@cache
def _number_words() -> dict[str, int]:
    """Number words 1..MAX_POSITION, cardinal and ordinal, of every language num2words knows, normalised as titles
    are; a word two languages read as different numbers is left out."""
    from num2words import CONVERTER_CLASSES, num2words

    found: dict[str, set[int]] = {}
    for language in CONVERTER_CLASSES:
        for n in range(1, MAX_POSITION + 1):
            for kind in ("cardinal", "ordinal"):
                try:
                    word = normalise_title(num2words(n, lang=language, to=kind))
                except (NotImplementedError, ValueError, TypeError, AttributeError, KeyError, IndexError):
                    continue  # a language without ordinals, or without this number
                if word and " " not in word:
                    found.setdefault(word, set()).add(n)
    return {word: next(iter(numbers)) for word, numbers in found.items() if len(numbers) == 1}


def _numeral(token: str, roman_one: bool = False) -> int | None:
    """A token that is a place number: digits or a roman numeral (a lone "i" only where it must be one)."""
    if token.isdigit():
        value = int(token)
    elif token in _ROMAN and (token != "i" or roman_one):
        value = _ROMAN.index(token) + 1
    else:
        return None
    return value if 1 <= value <= MAX_POSITION else None


def _named_number(tokens: list[str], at: int) -> int | None:
    """The number a place word at `at` names ("part ii", "chapter three", "teil 2"), if it is one."""
    if at + 1 >= len(tokens) or tokens[at] not in _PLACE_WORDS:
        return None
    following = tokens[at + 1]
    return _numeral(following, roman_one=True) or _number_words().get(following)


@dataclass(frozen=True)
class _Reading:
    """A title read without a catalogue: its head (without a number named as one), that number, the number that
    ends the head (a place or part of a name), the subtitle, and the head as the title writes it, without the words
    of a named number that ended it ("The Godfather" of "The Godfather Part II")."""
    head: list[str]
    named: int | None
    trailing: int | None
    subtitle: str
    written: str

    @property
    def base(self) -> str:
        """The series name if the trailing number is a place."""
        return _series_name(self.head[:-1] if self.trailing is not None else self.head)

    @property
    def whole(self) -> str:
        """The series name if the trailing number is part of the name."""
        return _series_name(self.head)


def _series_name(tokens: list[str]) -> str:
    joined = " ".join(tokens)
    return _LEADING_ARTICLE.sub("", joined) or joined


def _without_named(tokens: list[str]) -> tuple[list[str], int | None]:
    for at in range(len(tokens)):
        if (number := _named_number(tokens, at)) is not None:
            return tokens[:at] + tokens[at + 2:], number
    return tokens, None


def _read(title: str) -> _Reading:
    written, *rest = _SUBTITLE.split(title, maxsplit=1)
    whole = normalise_title(written).split()
    head, named = _without_named(whole)
    if named is not None and head == whole[:-2]:
        written = " ".join(written.split()[:-2])  # the named number ended the head: its two words go
    subtitle = normalise_title(rest[0]).split() if rest else []
    if named is None:
        subtitle, named = _without_named(subtitle)
    trailing = None
    if named is None and len(head) > 1 and (value := _numeral(head[-1])) is not None and value > 1:
        trailing = value
    elif named is None and len(subtitle) == 1 and (value := _numeral(subtitle[0])) is not None:
        subtitle, trailing, head = [], value, head + subtitle  # "Alien: 3" reads as "Alien 3"
        written = f"{written} {rest[0].strip()}"
    return _Reading(head, named, trailing, " ".join(subtitle), written.strip())


class Series:
    """The places of a catalogue's titles: which numbers ending a title are places of a series it shows."""

    def __init__(self, titles: Iterable[str]):
        self._places: dict[str, set[int]] = {}  # a series' first film (1), named places, and shown trailing ones
        self._trailing: dict[str, set[int]] = {}
        for reading in map(_read, dict.fromkeys(titles)):
            if reading.trailing is not None:
                self._trailing.setdefault(reading.base, set()).add(reading.trailing)
            else:  # a named place, or a film of the series without a number (its first, or one told by subtitle)
                self._places.setdefault(reading.base, set()).add(reading.named or 1)
        shown = True
        while shown:  # "Rocky IV" is shown by "Rocky II", shown by "Rocky"
            shown = False
            for series, numbers in self._trailing.items():
                for number in numbers - self._places.get(series, set()):
                    if self.shows(series, number):
                        self._places.setdefault(series, set()).add(number)
                        shown = True

    def shows(self, series: str, number: int) -> bool:
        """Whether the catalogue shows `series` around `number`: a place of it one or two before (a film of it
        without a number, a named place, a shown number), or another title ending with the number before or after
        it."""
        places, trailing = self._places.get(series, set()), self._trailing.get(series, set())
        return bool({number - 1, number - 2} & places or {number - 1, number + 1} & trailing)

    def position(self, title: str) -> Position:
        reading = _read(title)
        number, series, name = reading.named, reading.base, reading.written
        if reading.trailing is not None:
            if self.shows(series, reading.trailing):
                number, name = reading.trailing, " ".join(name.split()[:-1])
            else:
                series = reading.whole
        return Position(series, number, reading.subtitle, name)


def one_series(a: Position, b: Position) -> bool:
    return bool(a.series) and a.series == b.series


def numbers_named(text: str, series: str) -> set[int]:
    """The numbers the text gives the series: "Ride Along 2", "terminator ii", "godfather part two" (normalised text
    and series)."""
    if not series:
        return set()
    found, padded, needle, start = set(), f" {text} ", f" {series} ", 0
    while (at := padded.find(needle, start)) >= 0:
        following = padded[at + len(needle):].split(" ", 2)[:2]
        number = _numeral(following[0]) if following else None
        if number is None:
            number = _named_number(following, 0)
        if number is not None:
            found.add(number)
        start = at + 1
    return found
