"""Recognising a film the reference holds from a description of it, and answering with that film's labels.

The evidence is weighed together (evidence.py: similarity and its lead, the names shared and how distinctive they
are, the film's title and year in the text, the lead over the film's series siblings) by a logistic model per
route, fitted by `moviegenre tune-recognition` on calibration data without any film `make eval` reports on and
stored in service/data/recognition.json: IMDb's English descriptions of dev-eval/n_movies.csv and the reference
sources' other descriptions of its films for the English route, the calibration halves of dev-eval/multilingual
(and the English descriptions searched on that route) for the multilingual one. A score stands for the probability
that a close film is the film described. Of the closest films, the one the model scores highest is taken for the
film described when its score reaches the route's threshold, unless

- the text gives its series another number ("… Ride Along 2 …" is not "Ride Along"), or
- a film of its series scores within the route's `near_tie` of it: among near-ties of one series no film is
  named rather than a wrong one (a sequel shares its names and its story's shape with the film before).

When no film is taken but the best and the films of its series reach the threshold together (series_score), the
text is surely of the series: it is answered with the genres its films share (sequels mostly share theirs),
`source` "series", naming none. Otherwise the answer's scores are the genres expected over the close films by their
probabilities (`expected`). Threshold and near-tie margin were chosen by the same command for the rates the docs give.
"""
from __future__ import annotations

import json
import logging
import math
import operator
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.corpus import Film
from service.evidence import FEATURES, Candidate, Evidence
from service.names import Names
from service.store import Neighbour

MODELS_FILE = Path(__file__).parent / "data" / "recognition.json"
# an editor's correction is recognised on any route when the text is the corrected one, or as good as (a
# retyped space, a fixed typo): such a text is what the editor answered for
NEAR_COPY = 0.95
log = logging.getLogger("moviegenre")


@dataclass(frozen=True)
class Model:
    """A route's logistic model over evidence.FEATURES (raw values: the scaling it was fitted with is folded into
    the weights), the score a film must reach, and the margin within which two films of one series tie."""
    weights: tuple[float, ...]
    bias: float
    threshold: float
    near_tie: float

    def score(self, features: Sequence[float]) -> float:
        return self.bias + sum(map(operator.mul, self.weights, features))

    @classmethod
    def from_dict(cls, d: dict) -> Model:
        return cls(tuple(d["weights"]), d["bias"], d["threshold"], d["near_tie"])


def load_models(path: Path = MODELS_FILE) -> dict[str, Model]:
    """The routes' models; a route whose model was fitted on other features than these recognises nothing."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("film recognition is off: %s cannot be read (%s)", path, exc)
        return {}
    models = {}
    for route, d in stored.get("routes", {}).items():
        if tuple(d.get("features", ())) == FEATURES:
            models[route] = Model.from_dict(d)
        else:
            log.warning("film recognition is off on the %s route: %s was fitted on other features", route, path)
    return models


@dataclass(frozen=True)
class Recognition:
    """The film a description was taken for; or, when the text is surely of a series but of none of its films
    surely (`film` None), the series' films it may be of, answered with the genres they all share."""
    film: Film | None
    similarity: float
    series: tuple[Film, ...] = ()
    series_name: str = ""  # the series' name as its titles write it ("The Godfather")

    @property
    def source(self) -> str:
        """"correction" when an editor's correction decided the answer, "series" for a series' shared genres, else
        "reference"."""
        if self.film is None:
            return "series"
        return "correction" if self.film.source == "correction" else "reference"

    @property
    def genres(self) -> tuple[str, ...]:
        """The film's labels; of a series, the labels every one of its films has, in the first's order."""
        if self.film is not None:
            return self.film.genres
        first, *others = self.series
        return tuple(g for g in first.genres if all(g in other.genres for other in others))


def probability(score: float) -> float:
    """The probability a model's score stands for: that the text is of this film."""
    return 1 / (1 + math.exp(-score)) if score >= 0 else math.exp(score) / (1 + math.exp(score))


def series_score(scores: Sequence[float]) -> float:
    """The score of "one of these films" (films of one series): the logit of their summed probabilities, as a text
    is of one film at most."""
    p = sum(map(probability, scores))
    return math.inf if p >= 1 else -math.inf if p <= 0 else math.log(p / (1 - p))


def decide(scored: Sequence[tuple[float, Candidate]], threshold: float,
           near_tie: float) -> tuple[Candidate, list[Candidate]] | None:
    """(the best-scored candidate, []) when it reaches the threshold and no film of its series scores within
    `near_tie` of it; else, when the best and the films of its series the text does not contradict reach it
    together (series_score: the text is surely of the series, of none of its films surely), (the best, those
    films); else None."""
    if not scored:
        return None
    first = max(range(len(scored)), key=lambda k: scored[k][0])
    best, candidate = scored[first]
    siblings = _uncontradicted_siblings(scored, first)
    if best >= threshold and all(best - scored[k][0] >= near_tie for k in siblings):
        return candidate, []
    if _surely_of_its_series(scored, first, threshold):
        return candidate, [scored[k][1] for k in siblings]
    return None


def _uncontradicted_siblings(scored: Sequence[tuple[float, Candidate]], k: int) -> list[int]:
    """The positions of candidate k's series siblings whose place the text does not contradict."""
    return [j for j in scored[k][1].siblings if scored[j][0] != -math.inf]


def _surely_of_its_series(scored: Sequence[tuple[float, Candidate]], k: int, threshold: float) -> bool:
    """Whether candidate k and its (uncontradicted) siblings reach the threshold together (series_score)."""
    siblings = _uncontradicted_siblings(scored, k)
    return bool(siblings) and scored[k][0] != -math.inf and \
        series_score([scored[k][0], *(scored[j][0] for j in siblings)]) >= threshold


@dataclass(frozen=True)
class Reading:
    """What recognition makes of a text: the film (or series) it is taken for, if any, and each close film with
    the probability its route's model gives it of being the film described."""
    recognition: Recognition | None
    likely: tuple[tuple[Film, float], ...] = ()


class Recogniser:
    """The reference's films, their names and series places (counted on first use or at warm-up), and the
    routes' models."""

    def __init__(self, films: Sequence[Film], models: dict[str, Model] | None = None):
        self.names = Names(films)
        self.evidence = Evidence(self.names)
        self.models = load_models() if models is None else models
        self._warm = threading.Lock()

    def warm_up(self) -> None:
        with self._warm:
            self.evidence.warm_up()

    def scored(self, text: str, neighbours: Sequence[Neighbour], route: str) -> list[tuple[float, Candidate]]:
        """Each closest film with its score (a film whose series place the text contradicts scores -inf)."""
        model = self.models.get(route)
        if model is None:
            return []
        return [(float("-inf") if c.contradicted else model.score(c.features), c)
                for c in self.evidence.candidates(text, neighbours)]

    def read(self, text: str, neighbours: Sequence[Neighbour], route: str) -> Reading:
        """The film or series the text is taken for (decide), and how likely each close film is its film."""
        model = self.models.get(route)
        scored = self.scored(text, neighbours, route)
        decided = decide(scored, model.threshold, model.near_tie) if model else None
        return Reading(self.recognition(*decided) if decided else None,
                       tuple((c.film, p) for score, c in scored if (p := probability(score)) > 0))

    def recognise(self, text: str, neighbours: Sequence[Neighbour], route: str) -> Recognition | None:
        return self.read(text, neighbours, route).recognition

    def recognition(self, candidate: Candidate, tied: Sequence[Candidate]) -> Recognition | None:
        """The film, or with near-ties of its series the series' shared genres (None when they share none)."""
        if not tied:
            return Recognition(candidate.film, candidate.similarity)
        films = (candidate.film, *(c.film for c in tied))
        positions = [self.evidence.position(film) for film in films]
        one = all(p.series == positions[0].series for p in positions)
        name = positions[0].name if one else " / ".join(film.title for film in films)
        found = Recognition(None, candidate.similarity, films, name)
        return found if found.genres else None

    def suspects(self, text: str, neighbours: Sequence[Neighbour], route: str) -> list[Film]:
        """Every close film the model would take this description for, were it the one chosen (near-ties and
        all), and every film of a series the text would be taken to be of: what an evaluation excludes as possibly
        the same film."""
        model = self.models.get(route)
        scored = self.scored(text, neighbours, route)
        if model is None:
            return []
        taken = {k for k, (score, _) in enumerate(scored) if score >= model.threshold}
        for k in range(len(scored)):
            if _surely_of_its_series(scored, k, model.threshold):
                taken |= {k, *_uncontradicted_siblings(scored, k)}
        return [scored[k][1].film for k in sorted(taken)]


def recognise_correction(neighbours: Sequence[Neighbour]) -> Recognition | None:
    if neighbours and neighbours[0].film.source == "correction" and neighbours[0].similarity >= NEAR_COPY:
        return Recognition(neighbours[0].film, neighbours[0].similarity)
    return None


def expected(scores: dict[str, float], likely: Sequence[tuple[Film, float]]) -> dict[str, float]:
    """Each genre's score expected over which film the text is of, when none is sure: a close film's labels count
    with the probability that it is the film described, the scores given (the vote's) with what is left (measured
    on n_movies' descriptions against answering with the vote: +0.017 micro-F1 on known films, +0.001 on films the
    reference lacks; German and French calibration halves within ±0.001)."""
    total = sum(p for _, p in likely)
    weight = 1 / total if total > 1 else 1.0
    found = {genre: (1 - min(total, 1.0)) * score for genre, score in scores.items()}
    for film, p in likely:
        for genre in film.genres:
            found[genre] = found.get(genre, 0.0) + p * weight
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def lean_on(scores: dict[str, float], genres: Sequence[str]) -> dict[str, float]:
    """The recognised film's labels (or its series') are the answer: they score 1, in their order; the predicted
    scores of the other genres stay beside them, for a person to see (measured: adding them to the answer costs
    precision more than it brings recall)."""
    labels = {genre: 1.0 for genre in genres}
    rest = sorted((item for item in scores.items() if item[0] not in labels), key=lambda item: -item[1])
    return labels | dict(rest)
