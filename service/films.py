"""Film identity: which film a title (and year) names, in one place for every reader (evaluation's exclusion and
recall, recognition, lookups, corrections).

A film goes by its title and its other titles (its original title, other languages' titles), compared normalised
(`normalise_title`); two records are one film when one of their titles is the same and their years agree (equal,
or one of them unknown; `year_tolerance` widens "equal" for sources that date a film by another release).
`TitleIndex(films).named(title, year)` answers with the films a title names: one, several or none.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, Literal, Protocol, TypeVar

import regex


class Titled(Protocol):
    """What identity reads of a film (corpus.Film has it)."""
    title: str
    year: int | None
    aliases: tuple[str, ...]


F = TypeVar("F", bound=Titled)
# Which normalisation film keys were made with (film_key, corpus.plot_key): the corrections store records it and
# re-keys what it holds when it changes (corrections/schema.py). Raise it with any change of what normalise_title
# folds. 2: Cyrillic letters with marks (й, ї, ў, ѓ, ...) kept whole.
KEYS_VERSION = 2
# The scripts whose marks are accents a reader may leave out: Latin and Greek accents (catalogues and keyboards drop
# them: "Amelie" is "Amélie"), Arabic harakat and Hebrew niqqud (optional vowels). In Cyrillic a letter with a mark is
# a letter of its alphabet (й is not и, ї is not і, ў is not у): only a stress mark written over a vowel, which makes
# no letter, is left out. Elsewhere a mark is part of its letter (a Devanagari vowel sign, a Japanese dakuten).
_FOLDS_ACCENTS = re.compile(r"(LATIN|GREEK|ARABIC|HEBREW) ")
_KEEPS_LETTERS = re.compile(r"CYRILLIC ")
# ё is optional in Russian print (ёлка is often written елка), and ѐ, ѝ are е and и with a stress accent
_OPTIONAL_LETTERS = str.maketrans({"ё": "е", "ѐ": "е", "ѝ": "и"})
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_NOT_A_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}]")  # letters, marks and digits of every script make words


def normalise_title(title: str) -> str:
    """Casefolded letters (with their marks) and digits of every script, other characters read as spaces;
    accents on Latin and Greek letters and the optional vowel marks of Arabic and Hebrew folded ('Amélie' meets
    'amelie'), Cyrillic letters kept whole ('война' is not 'воина'; only Russian's optional ё reads as е), marks
    that change a letter elsewhere kept (Devanagari vowel signs, Japanese dakuten, Hangul stays whole); '&' reads
    as 'and'. '千と千尋の神隠し' stays '千と千尋の神隠し'."""
    text = unicodedata.normalize("NFKC", title).casefold()
    if not text.isascii():
        text = _without_accents(unicodedata.normalize("NFKD", text.translate(_OPTIONAL_LETTERS)))
    text = unicodedata.normalize("NFC", text).replace("&", " and ")
    return " ".join(_NOT_A_WORD.sub(" ", text).split())


def _without_accents(text: str) -> str:
    """The decomposed text without its accents (_is_accent: a mark's letter is the last character before it that is
    no mark); only the characters outside ASCII are looked at."""
    if text.isascii():
        return text
    kept, start = [], 0
    for match in _NON_ASCII.finditer(text):
        at = match.start()
        if unicodedata.combining(text[at]):
            base = at - 1
            while base >= 0 and unicodedata.combining(text[base]):
                base -= 1
            if base >= 0 and _is_accent(text[base], text[at]):
                kept.append(text[start:at])
                start = at + 1
    kept.append(text[start:])
    return "".join(kept)


@lru_cache(maxsize=4096)
def _is_accent(base: str, mark: str) -> bool:
    """Whether `mark` on `base` is an accent a reader may leave out (see _FOLDS_ACCENTS)."""
    name = unicodedata.name(base, "")
    if _KEEPS_LETTERS.match(name):
        return len(unicodedata.normalize("NFC", base + mark)) > 1  # a stress mark makes no letter of its own
    return _FOLDS_ACCENTS.match(name) is not None


def title_key(title: str) -> str:
    """The normalised title, or the title itself when nothing of it normalises (a title of emoji alone)."""
    return normalise_title(title) or title.strip()


def film_key(title: str, year: int | None) -> str:
    """Which film this is: its normalised title and its year. After deduplication no two reference films share
    one (films of one title and no year, or of one title and the same year, were merged), so a correction
    keyed by it changes one film."""
    return f"{title_key(title)}|{year or ''}"


def years_agree(a: int | None, b: int | None, tolerance: int = 0) -> bool:
    """Two years of one film: equal (within `tolerance`), or one of them unknown."""
    return a is None or b is None or abs(a - b) <= tolerance


def titles_of(film: Titled) -> tuple[str, ...]:
    """The film's title and its other titles."""
    return (film.title, *film.aliases)


def other_titles(titles: Iterable[str | None], title: str) -> tuple[str, ...]:
    """The other titles given, whitespace cleaned, without the title itself or repeats (normalised)."""
    own = normalise_title(title)
    kept: dict[str, str] = {}
    for alias in titles:
        alias = " ".join((alias or "").replace("\xa0", " ").split())
        if alias and normalise_title(alias) != own:
            kept.setdefault(normalise_title(alias) or alias, alias)
    return tuple(kept.values())


@dataclass(frozen=True)
class Named(Generic[F]):
    """The films a title (and year) names, and where they lie in the films the index was made of."""
    films: tuple[F, ...]
    positions: tuple[int, ...]

    @property
    def kind(self) -> Literal["one", "several", "none"]:
        return "one" if len(self.films) == 1 else "several" if self.films else "none"


class TitleIndex(Generic[F]):
    """The films by each of their titles, normalised."""

    def __init__(self, films: Sequence[F], year_tolerance: int = 0):
        self.films = films
        self.year_tolerance = year_tolerance
        self._positions: dict[str, list[int]] = {}
        for i, film in enumerate(films):
            for key in dict.fromkeys(title_key(title) for title in titles_of(film)):
                self._positions.setdefault(key, []).append(i)

    def named(self, title: str, year: int | None = None) -> Named[F]:
        """The films going by `title` whose year agrees with `year` (any year when None)."""
        positions = tuple(i for i in self._positions.get(title_key(title), ())
                          if years_agree(self.films[i].year, year, self.year_tolerance))
        return Named(tuple(self.films[i] for i in positions), positions)

    def holds(self, title: str) -> bool:
        """Whether any film goes by `title`, whatever its year."""
        return title_key(title) in self._positions

    def of(self, film: Titled) -> Named[F]:
        """The indexed films that are `film`: any of its titles, its year agreeing."""
        positions = tuple(sorted({i for title in titles_of(film) for i in self.named(title, film.year).positions}))
        return Named(tuple(self.films[i] for i in positions), positions)
