"""The names a film is told with (characters, places, a ship: "Lecter", "Arendelle", "Nostromo"), which carry across
languages where an embedding's similarity does not.

A name is a word written capitalised in the middle of a sentence (a sentence's first word is capitalised whatever
it is), of three letters or more, that is not a stop word of the text's language (stopwordsiso's lists: "Der",
"Les", "Mais" are capitalised function words) and that the reference writes capitalised more often than not
("Agent", "City", "Doctor" are common nouns it mostly writes in lower case; a German noun the English reference
never writes is no name of it either). Each weighs its rarity among the reference's films: log(films / (1 +
films naming it)), "Lecter" ~9, "John" ~4. In a script without capitals (Chinese, Japanese, Arabic, …) a text
names a film by one of the titles the reference gives it ("千と千尋の神隠し" is an other title of Spirited Away).
"""
from __future__ import annotations

import math
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from service.films import Titled, normalise_title, titles_of

_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_POSSESSIVE = re.compile(r"['’]s$")
_TOKEN = re.compile(r"([.!?…:;\n\"“”«»]+)|([^\W\d_][\w'’-]*)")  # a run ending a sentence, or a word
MIN_LETTERS = 3
_ABBREVIATION = re.compile(r"[A-Z][a-z]{0,2}")  # Mr, Dr, St, Mrs, Jr: a title before a name
# Chinese, Japanese (kana and kanji) and Thai are written without spaces between words
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MIN_TITLE = 2  # characters of a title a text is taken to name


@cache
def _stop_words() -> dict[str, frozenset[str]]:
    """Lower-case word → the languages (ISO 639-1) whose stop-word list holds it."""
    import stopwordsiso

    languages: dict[str, set[str]] = {}
    for code in sorted(stopwordsiso.langs()):
        for word in stopwordsiso.stopwords(code):
            languages.setdefault(word.casefold(), set()).add(code)
    shared: dict[frozenset[str], frozenset[str]] = {}  # most words share their languages with others: one set each
    return {word: shared.setdefault(frozenset(codes), frozenset(codes)) for word, codes in languages.items()}


def stop_words_of(words: Iterable[str]) -> frozenset[str]:
    """The stop words among `words` (lower case) of the language whose list holds most of them: the text's
    language, told by its function words (a German text's "der", "und", "mit")."""
    table = _stop_words()
    found = [word for word in words if word in table]
    votes = Counter(code for word in found for code in table[word])
    if not votes:
        return frozenset()
    language = votes.most_common(1)[0][0]
    return frozenset(word for word in found if language in table[word])


def words_and_capitalised(text: str) -> tuple[list[str], list[tuple[str, bool]]]:
    """Every word of the text, and each capitalised word of three letters or more (a possessive's "'s" dropped; a
    hyphenated word whole and each capitalised part: "Jedi-Ritter", "Jedi") with whether it opens a sentence (the
    text's first word, or the first after a full stop, a colon, a quotation mark, a line break; not after "Mr.")."""
    words, found = [], []
    opens, last_end, last_word, first_of_piece = True, -1, "", True
    for match in _TOKEN.finditer(text):
        end, word = match.group(1), match.group(2)
        if end is not None:
            opens = not (end == "." and not first_of_piece and last_end == match.start()
                         and _ABBREVIATION.fullmatch(last_word) is not None)
            first_of_piece = True
            continue
        words.append(word)
        if word[0].isupper():
            word = _POSSESSIVE.sub("", word)
            found += [(part, opens and first_of_piece) for part in dict.fromkeys([word, *word.split("-")])
                      if len(part) >= MIN_LETTERS and part[0].isupper()]
        last_end, last_word, first_of_piece = match.end(), match.group(2), False
    return words, found


def capitalised_words(text: str) -> list[tuple[str, bool]]:
    return words_and_capitalised(text)[1]


def candidate_names(text: str, titles: Iterable[str] = ()) -> set[str]:
    """Words of the text that may be names: capitalised mid-sentence, no stop word of its language; and, for a
    film, the capitalised words of its `titles` that are no stop word of its plot's language."""
    words, capitalised = words_and_capitalised(text)
    stop = stop_words_of(word.casefold() for word in words)
    title_words = (word for title in titles for word, _ in capitalised_words(title))
    return {word for word in title_words if word.casefold() not in stop} | \
        {word for word, opens in capitalised if not opens and word.casefold() not in stop}


@dataclass(frozen=True)
class Shared:
    """What a text shares with one film: its names' weight and number, and the weight of the text's names the
    film lacks; whether the text holds one of the film's titles whole."""
    weight: float
    count: int
    missing: float
    title: bool


class Names:
    """The names of the reference's films, counted once on first use (~1-2 s for 16k films)."""

    def __init__(self, films: Sequence[Titled]):
        self.films = films
        self._weights: dict[str, float] | None = None
        self._by_film: dict[int, tuple[str, ...]] = {}  # tuples: a tenth of a set's memory, 16k times
        self._titles: dict[int, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def weights(self) -> dict[str, float]:
        weights = self._weights  # counted once: read without the lock from then on (a request reads it ~60 times)
        if weights is None:
            with self._lock:
                if self._weights is None:
                    self._weights = self._count()
                weights = self._weights
        return weights

    def _count(self) -> dict[str, float]:
        counts, by_film = Counter(), {}
        for film in self.films:
            names = by_film[id(film)] = tuple(self._film_names(film))
            counts.update(names)
        # the films that write each name in lower case, counted for the names alone (counting every word of 16k plots
        # left the process 15 MB larger: the memory of a million short-lived strings is not given back)
        folded = {name.casefold() for name in counts}
        lower = Counter()
        for film in self.films:
            lower.update({w.casefold() for w in _WORD.findall(film.plot) if w[0].islower() and w.casefold() in folded})
        weights = {name: math.log(len(self.films) / (1 + n)) for name, n in counts.items()
                   if lower[name.casefold()] < n}
        self._by_film = {key: tuple(sys.intern(n) for n in names if n in weights) for key, names in by_film.items()}
        self._titles = {id(film): _named_titles(film, weights) for film in self.films}
        return weights

    @staticmethod
    def _film_names(film: Titled) -> set[str]:
        """The capitalised words of its titles and its plot's names, no stop word of its plot's language."""
        return candidate_names(film.plot, titles_of(film))

    def names_of(self, film: Titled) -> frozenset[str]:
        """The film's names (precomputed for the reference's films; counted now for another, a correction)."""
        weights = self.weights()
        found = self._by_film.get(id(film))
        return frozenset(found if found is not None else (n for n in self._film_names(film) if n in weights))

    def holds(self, film: Titled) -> bool:
        """Whether the film is one of the reference's (its names counted with the weights)."""
        self.weights()
        return id(film) in self._by_film

    def weigh(self, names: Iterable[str]) -> float:
        weights = self.weights()
        return sum(weights[name] for name in names)

    def described(self, text: str) -> frozenset[str]:
        weights = self.weights()
        return frozenset(name for name in candidate_names(text) if name in weights)

    def shared(self, described: frozenset[str], normalised_text: str, film: Titled,
               film_names: frozenset[str] | None = None) -> Shared:
        """`film_names`: the film's names_of, when the caller has them."""
        weights = self.weights()
        names = described & (self.names_of(film) if film_names is None else film_names)
        titles = self._titles.get(id(film))
        if titles is None:
            titles = _named_titles(film, weights)
        return Shared(sum(weights[n] for n in names), len(names),
                      sum(weights[n] for n in described - names),
                      any(holds(normalised_text, title) for title in titles))


def _named_titles(film: Titled, weights: dict[str, float]) -> tuple[str, ...]:
    """The film's titles a text can name it by: of two words or more, of one word that is a name ("Titanic", not
    "Heat"), or in a script written without spaces."""
    kept = []
    for title in titles_of(film):
        key = normalise_title(title)
        if " " in key or _UNSPACED.search(key) or any(word in weights for word, _ in capitalised_words(title)):
            kept.append(key)
    return tuple(dict.fromkeys(k for k in kept if len(k) >= MIN_TITLE))


def holds(text: str, title: str) -> bool:
    """A normalised text holds a normalised title: anywhere in a script written without spaces, else as whole
    words."""
    return title in text if _UNSPACED.search(title) else f" {title} " in f" {text} "
