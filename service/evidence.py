"""What a description has in common with each of its closest reference films: the evidence recognition weighs
(recognition.py). Each candidate gets the same features, read against the other candidates:

- similarity, and its lead over the closest other candidate;
- the names they share (names.py): their weight, its lead over the other candidates', the weight of those no film
  of the candidate's series among the candidates shares too (a sequel shares its series' names; only the names
  of its own story tell it from them), the weight of the text's names another candidate has and this one lacks,
  how many they are (up to 3), and how much of both sides' names they cover;
- whether the text holds the film's title (for a film with a series sibling among the candidates, only a title
  with a number or a subtitle counts: a sequel's description names its series, which is its first film's title),
  and the film's year;
- its similarity's lead over its closest series sibling.

Films of one series (siblings) share a series name (series.py) or two rare names of their own. A candidate whose
place in its series contradicts the text ("… Ride Along 2 …" against "Ride Along") is marked, not scored away.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from service.films import Titled, normalise_title, titles_of
from service.names import Names
from service.series import Position, Series, numbers_named, one_series

FEATURES = ("similarity", "lead", "names", "names_lead", "distinct_names", "names_elsewhere", "names_count",
            "names_overlap", "title_named", "year_named", "sibling_lead")
CANDIDATES = 10  # the closest films weighed
SIBLING_NAME_WEIGHT = 6.0  # names this rare (a film in ~40 of 16k) that two films share make them one series
SIBLING_NAMES = 2
# how many shared names count as such: descriptions of calibration have 0-3, a long plot a dozen, and a linear
# weight learned on the former must not read the latter
MAX_NAMES_COUNTED = 3
NO_SIBLING_LEAD = 0.1  # a candidate without a sibling leads its series by as much as a clear lead
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


@dataclass(frozen=True)
class Candidate:
    film: Titled
    similarity: float
    features: tuple[float, ...]
    siblings: tuple[int, ...]  # positions among the candidates of the films of its series
    contradicted: bool         # the text gives its series another number


class Evidence:
    """Features of the closest films; series places are read once per film (`warm_up` reads every film's)."""

    def __init__(self, names: Names):
        self.names = names
        self._series: Series | None = None
        self._positions: dict[int, Position] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self.names.weights()
        for film in self.names.films:
            self.position(film)

    def series(self) -> Series:
        """The series places of the reference's titles, read once on first use."""
        series = self._series
        if series is None:
            with self._lock:
                if self._series is None:
                    self._series = Series(title for film in self.names.films for title in titles_of(film))
                series = self._series
        return series

    def position(self, film: Titled) -> Position:
        found = self._positions.get(id(film))
        if found is None:
            found = self.series().position(film.title)
            if self.names.holds(film):  # a film of the reference, not a correction that may go
                self._positions[id(film)] = found
        return found

    def candidates(self, text: str, neighbours: Sequence) -> list[Candidate]:
        """`neighbours`: the closest films first (each with .film and .similarity)."""
        neighbours = list(neighbours[:CANDIDATES])
        if not neighbours:
            return []
        described, normalised = self.names.described(text), normalise_title(text)
        years = {int(y) for y in _YEAR.findall(text)}
        film_names = [self.names.names_of(n.film) for n in neighbours]
        shared = [self.names.shared(described, normalised, n.film, names) for n, names in zip(neighbours, film_names)]
        positions = [self.position(n.film) for n in neighbours]
        siblings = self._siblings(film_names, positions)
        similarities = [n.similarity for n in neighbours]
        closest_other, heaviest_other = _best_of_others(similarities), _best_of_others([s.weight for s in shared])
        anyones = described & frozenset().union(*film_names)  # the text's names some close film has
        weigh, found = self.names.weigh, []
        for j, (neighbour, mine) in enumerate(zip(neighbours, shared)):
            sibling_names = frozenset().union(*(film_names[k] for k in siblings[j]))
            features = (
                neighbour.similarity,
                neighbour.similarity - closest_other[j],
                math.log1p(mine.weight),
                _signed_log(mine.weight - heaviest_other[j]),
                math.log1p(weigh((described & film_names[j]) - sibling_names)),
                math.log1p(weigh(anyones - film_names[j])),
                float(min(mine.count, MAX_NAMES_COUNTED)),
                mine.weight / (mine.weight + mine.missing + weigh(film_names[j] - described) + 1e-9),
                float(mine.title and (not siblings[j] or not positions[j].first)),
                float(neighbour.film.year in years),
                neighbour.similarity - max((similarities[k] for k in siblings[j]),
                                           default=neighbour.similarity - NO_SIBLING_LEAD),
            )
            found.append(Candidate(neighbour.film, neighbour.similarity, features, siblings[j],
                                   _contradicted(normalised, positions[j])))
        return found

    def rare_weight(self) -> float:
        """SIBLING_NAME_WEIGHT; in a small index, where no name weighs that much, a name of at most two films."""
        return min(SIBLING_NAME_WEIGHT, math.log(max(len(self.names.films), 3) / 3))

    def _siblings(self, film_names: list[frozenset[str]], positions: list[Position]) -> list[tuple[int, ...]]:
        weights, rare_weight = self.names.weights(), self.rare_weight()
        rare = [frozenset(n for n in names if weights[n] >= rare_weight) for names in film_names]
        found: list[list[int]] = [[] for _ in positions]
        for a in range(len(positions)):
            for b in range(a + 1, len(positions)):
                if one_series(positions[a], positions[b]) or len(rare[a] & rare[b]) >= SIBLING_NAMES:
                    found[a].append(b)
                    found[b].append(a)
        return [tuple(f) for f in found]


def _best_of_others(values: list[float]) -> list[float]:
    """For each value, the largest of the others (0 when there is none)."""
    if len(values) < 2:
        return [0.0] * len(values)
    first = max(range(len(values)), key=values.__getitem__)
    second = max(v for k, v in enumerate(values) if k != first)
    return [second if k == first else values[first] for k in range(len(values))]


def _signed_log(value: float) -> float:
    return math.copysign(math.log1p(abs(value)), value)


def _contradicted(normalised_text: str, position: Position) -> bool:
    """The text gives the film's series numbers and none is the film's (a film with no number and no subtitle is
    number 1 of its series; a subtitle without a number is placed by nothing the text can say)."""
    named = numbers_named(normalised_text, position.series)
    if not named:
        return False
    own = position.number if position.number is not None else (1 if position.first else None)
    return own is not None and own not in named
