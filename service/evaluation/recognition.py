"""`moviegenre tune-recognition`: fits each route's recognition model (recognition.py) on calibration data and
stores it in service/data/recognition.json, with the table it was chosen from and what each calibration set dropped.

Calibration data, never a film of a set `make eval` reports on (held_out.py drops them from every set): the English
route reads IMDb's one-line descriptions of dev-eval/n_movies.csv (films only; another source than the reference's
plots) and the reference sources' other descriptions of its films (other_descriptions: a catalogue's words, longer
and naming their people); the multilingual route the calibration halves of dev-eval/multilingual
(scoring.splits.halves) and the same English descriptions of films the reference does not hold, searched on that
route. A description is of a known film when its title (and year) names reference films (films.TitleIndex): those
are its own films.

Each description is searched as it is (the model learns which close film is its own) and without its own films
(every close film is another). A logistic regression over evidence.FEATURES, one row per close film, learns
"this is the film described". Threshold and near-tie margin are then chosen on the same data as evaluation will
measure them: the most known films recognised as themselves such that, in every calibration set, at most
UNSEEN_SHARE of the descriptions is still recognised once its own films and every film the model would take it
for are left out (one round of what `make eval` calls unseen), at most OTHER_YEAR_SHARE is recognised as a film of
another year (a sequel, a remake), and at most LACKING_SHARE of the English descriptions of films the reference
lacks are recognised as a film on the multilingual route; on the English route, at most LACKING_SHARE of the
reference's own validation plots, each searched without its film (a plot of a sequel the reference lacks finds the
film before it). A series answer names no film and is counted apart. The same command measures again how close a
reference plot comes to the descriptions (exclusion.NEAR_DUPLICATE).
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.corpus import Film, corpus_files, parse_year, plot_key, read_file
from service.evidence import FEATURES, CANDIDATES, Candidate
from service.films import TitleIndex
from service.genres import DEFAULT, split_labels
from service.evaluation.exclusion import NEAR_DUPLICATE
from service.evaluation.held_out import HeldOut, read_sequels
from service.recognition import MODELS_FILE, Model, Recogniser, decide
from service.settings import PROJECT_ROOT
from service.store import Neighbour

UNSEEN_SHARE = 0.04
OTHER_YEAR_SHARE = 0.02
LACKING_SHARE = 0.03  # descriptions of films the reference lacks, recognised as searched
LACKING_SETS = ("english_on_multilingual", "reference_validation")
SEARCHED = 20  # close films per description: the candidates, and more for when some are left out
THRESHOLDS = tuple(np.round(np.arange(-6.0, 3.01, 0.25), 2))
NEAR_TIES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
# new English descriptions of sequels the reference holds, written for development (not the sequels `make eval`
# reports on): how the chosen English model reads them is printed and stored, never tuned on (a few dozen)
DEV_SEQUELS = PROJECT_ROOT / "dev" / "sequels.csv"


def descriptions(path: Path) -> list[Film]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["description"] and "–" not in r["year"] and "Add a Plot" not in r["description"]]
    films = [Film(r["title"], parse_year(r["year"]), r["description"],
                  tuple(DEFAULT.map_labels(split_labels(r["genre"]))[0]),
                  "n_movies") for r in rows]
    return [f for f in films if f.genres]


def other_descriptions(data: Path, reference: Sequence[Film]) -> list[Film]:
    """The reference sources' other descriptions of the films the index holds: rows deduplication set aside whose
    title (and year) name one reference film and whose text is not its plot, each under that film's title and year
    ("A self-conscious bride is tormented by the memory of her husband's dead first wife." beside Rebecca's plot):
    descriptions of known films as a catalogue writes them, longer than IMDb's and naming their people."""
    titles = TitleIndex(reference)
    seen = {plot_key(film.plot) for film in reference}
    found = []
    for fmt, path in corpus_files(data):
        for raw in read_file(fmt, path):
            plot, title = (" ".join((text or "").replace("\xa0", " ").split()) for text in (raw.plot, raw.title))
            if not plot or plot_key(plot) in seen:
                continue
            seen.add(plot_key(plot))
            if len(named := titles.named(title, raw.year).films) == 1:
                found.append(Film(named[0].title, named[0].year, plot, named[0].genres, "other description"))
    return found


@dataclass
class Case:
    """A calibration description, its own reference films (none: a film the reference lacks), the films closest
    to it, and its candidates as searched, without its own films, and after other exclusions (cached)."""
    film: Film
    own: frozenset[int]
    neighbours: list[Neighbour]
    _candidates: dict[frozenset[int], list[Candidate]] = field(default_factory=dict)
    _scored: dict[tuple, list[tuple[float, Candidate]]] = field(default_factory=dict)

    def candidates(self, recogniser: Recogniser, left_out: frozenset[int] = frozenset()) -> list[Candidate]:
        if left_out not in self._candidates:
            kept = [n for n in self.neighbours if id(n.film) not in left_out][:CANDIDATES]
            self._candidates[left_out] = recogniser.evidence.candidates(self.film.plot, kept)
        return self._candidates[left_out]

    def scored(self, recogniser: Recogniser, model: Model, left_out: frozenset[int] = frozenset()) -> list:
        """(score, candidate) as Recogniser.scored gives them; the scores do not depend on the threshold or the
        near-tie margin, so a grid of those reads them from here."""
        key = (model.weights, model.bias, left_out)
        if key not in self._scored:
            self._scored[key] = [(float("-inf") if c.contradicted else model.score(c.features), c)
                                 for c in self.candidates(recogniser, left_out)]
        return self._scored[key]


def cases(films: Sequence[Film], found: list[list[Neighbour]], titles: TitleIndex) -> list[Case]:
    return [Case(film, frozenset(id(f) for f in titles.of(film).films), neighbours)
            for film, neighbours in zip(films, found)]


def rows(recogniser: Recogniser, calibration: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    """One row per close film: as searched (own films are 1), and without the own films (all 0)."""
    features, labels = [], []
    for case in calibration:
        variants = [(frozenset(), case.own)] + ([(case.own, frozenset())] if case.own else [])
        for left_out, own in variants:
            for c in case.candidates(recogniser, left_out):
                features.append(c.features)
                labels.append(id(c.film) in own)
    return np.array(features, dtype=float), np.array(labels, dtype=int)


def fit(features: np.ndarray, labels: np.ndarray) -> tuple[tuple[float, ...], float]:
    """Logistic regression on standardised features, returned as weights and bias over the raw features."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000).fit((features - mean) / scale, labels)
    weights = model.coef_[0] / scale
    return tuple(round(float(w), 6) for w in weights), round(float(model.intercept_[0] - weights @ mean), 6)


@dataclass
class Tally:
    descriptions: int = 0
    known: int = 0
    right: int = 0
    wrong: int = 0
    other_year: int = 0
    series: int = 0               # answered with a series' shared genres, no film named
    series_own: int = 0           # of those, known descriptions whose own film is one of the series' films
    lacking_recognised: int = 0  # descriptions of films the reference lacks, recognised as searched (a film named)
    unseen_recognised: int = 0

    def share(self, count: int) -> float:
        return count / max(self.descriptions, 1)


def tally(recogniser: Recogniser, model: Model, calibration: list[Case]) -> Tally:
    """How the model decides on each description as searched (recognition.Recogniser.recognise's decision), and
    once its own films and every film the model would take it for are left out (evaluation's exclusion, one round)."""
    t = Tally()
    for case in calibration:
        scored = case.scored(recogniser, model)
        decided = decide(scored, model.threshold, model.near_tie)
        found = recogniser.recognition(*decided) if decided is not None else None
        t.descriptions += 1
        t.known += bool(case.own)
        if found is not None and found.film is not None:
            right = id(found.film) in case.own
            t.right += right
            t.wrong += bool(case.own) and not right
            t.other_year += None not in (found.film.year, case.film.year) and found.film.year != case.film.year
            t.lacking_recognised += not case.own
        elif found is not None:
            t.series += 1
            t.series_own += any(id(film) in case.own for film in found.series)
        suspects = frozenset(id(c.film) for s, c in scored if s >= model.threshold)
        rescored = case.scored(recogniser, model, case.own | suspects)
        again = decide(rescored, model.threshold, model.near_tie)
        t.unseen_recognised += again is not None and not again[1]
    return t


def choose(recogniser: Recogniser, weights: tuple[float, ...], bias: float, sets: dict[str, list[Case]],
           allowed: Callable[[str, Tally], bool]) -> tuple[Model | None, list[dict]]:
    """The threshold and near-tie margin that recognise the most known films as themselves within the limits
    (`allowed` per calibration set); the table of every pair tried."""
    table, best, best_right = [], None, -1
    for threshold in THRESHOLDS:
        for near_tie in NEAR_TIES:
            model = Model(weights, bias, float(threshold), near_tie)
            tallies = {name: tally(recogniser, model, cases_) for name, cases_ in sets.items()}
            ok = all(allowed(name, t) for name, t in tallies.items())
            right = sum(t.right for t in tallies.values())
            table.append({"threshold": float(threshold), "near_tie": near_tie, "allowed": ok,
                          **{name: vars(t) for name, t in tallies.items()}})
            if ok and right > best_right:
                best, best_right = model, right
    return best, table


def within_limits(name: str, t: Tally) -> bool:
    if name in LACKING_SETS:
        return t.share(t.lacking_recognised) <= LACKING_SHARE
    return t.share(t.unseen_recognised) <= UNSEEN_SHARE and t.share(t.other_year) <= OTHER_YEAR_SHARE


def stored(route: str, weights: tuple[float, ...], bias: float, model: Model, fitted_on: dict) -> dict:
    return {"features": list(FEATURES), "weights": list(weights), "bias": bias, "threshold": model.threshold,
            "near_tie": model.near_tie, "fitted_on": fitted_on, "route": route}


def write(result: dict, path: Path = MODELS_FILE) -> None:
    from service.atomic import write_json

    write_json(path, {"written_by": "moviegenre tune-recognition", "routes": result["routes"],
                      "held_out": result["held_out"], "near_duplicate": result["near_duplicate"],
                      "dev_sequels": result["dev_sequels"]})


def sequels_read(recogniser: Recogniser, model: Model, sequels: list[Case]) -> dict:
    """How a model reads descriptions of sequels the reference holds: as the film itself, as another film, with a
    series' shared genres (of its own series or not), or not at all."""
    t = tally(recogniser, model, sequels)
    return {"descriptions": t.descriptions, "itself": t.right, "another_film": t.wrong, "series": t.series,
            "series_of_its_own": t.series_own, "not_recognised": t.descriptions - t.right - t.wrong - t.series}


def tune(classifier, n_movies: Path, multilingual: dict[str, Path], evaluation: dict[str, list[Film]],
         reference: Path, dev_sequels: Path | None = DEV_SEQUELS) -> dict:
    """Fits and chooses each route's model on the calibration sets without the films of `evaluation` (every set
    `make eval` reports on: held_out.evaluation_sets); `reference`: the index's corpus, for its other descriptions.
    Returns what is stored, the tables, what each set dropped, the near-duplicate similarities measured on the
    same sets and how the English model reads `dev_sequels` (not yet written)."""
    from service.corpus import load_corpus
    from service.scoring.splits import halves

    recogniser = Recogniser(classifier.index.films, models={})
    recogniser.warm_up()
    titles = TitleIndex(classifier.index.films)
    held_out = HeldOut(evaluation, classifier.index.films, _embed(classifier), [r.name for r in classifier.routes()])
    english = held_out.keep(n_movies.name, descriptions(n_movies))
    other = held_out.keep("the reference's other descriptions", other_descriptions(reference, classifier.index.films))
    sets = {"english": {"n_movies": _searched(classifier, classifier.english, english, titles),
                        "other_descriptions": _told_again_left_out(
                            _searched(classifier, classifier.english, other, titles)),
                        "reference_validation": _without_themselves(classifier, titles, held_out)}}
    if classifier.multilingual is not None:
        lacking = [film for film in english if not titles.of(film).films]
        route = classifier.multilingual
        sets["multilingual"] = {
            code: _searched(classifier, route, held_out.keep(f"{path.name} (calibration half)",
                                                             halves(load_corpus(path).films)[0]), titles)
            for code, path in multilingual.items()}
        sets["multilingual"]["english_on_multilingual"] = _searched(classifier, route, lacking, titles)
    routes, tables = {}, {}
    for route, calibration in sets.items():
        weights, bias = fit(*rows(recogniser, [c for cases_ in calibration.values() for c in cases_]))
        model, tables[route] = choose(recogniser, weights, bias, calibration, within_limits)
        if model is not None:
            fitted_on = {name: {"descriptions": len(c), "known": sum(bool(x.own) for x in c)}
                         for name, c in calibration.items()}
            routes[route] = stored(route, weights, bias, model, fitted_on)
    sequels = None
    if dev_sequels is not None and "english" in routes:
        told = held_out.keep(f"{dev_sequels.name} (development)", read_sequels(dev_sequels))
        sequels = sequels_read(recogniser, Model.from_dict(routes["english"]),
                               _searched(classifier, classifier.english, told, titles)) | {"data": dev_sequels.name}
    return {"routes": routes, "tables": tables, "held_out": held_out.record(), "near_duplicate": near_duplicates(sets),
            "dev_sequels": sequels}


NEAR_DUPLICATE_GRID = tuple(np.round(np.arange(0.70, 0.991, 0.01), 2))


def near_duplicates(sets: dict[str, dict[str, list[Case]]]) -> dict:
    """How close a reference plot comes to a description, per index part, on the same calibration sets: of the known
    descriptions (English, on the English route), the share whose own film's plot is at least each threshold close
    (the same film told again, which exclusion.NEAR_DUPLICATE should find); of the descriptions of films the reference
    lacks, the share that find some plot that close (another film: what it should leave)."""
    measured = {}
    for part, name in (("english", "n_movies"), ("multilingual", "english_on_multilingual")):
        cases_ = sets.get(part, {}).get(name, [])
        known = [max((n.similarity for n in c.neighbours if id(n.film) in c.own), default=0.0)
                 for c in cases_ if c.own]
        lacking = [c.neighbours[0].similarity if c.neighbours else 0.0 for c in cases_ if not c.own]
        measured[part] = {"known": len(known), "lacking": len(lacking), "chosen": NEAR_DUPLICATE[part],
                          "at": {f"{t:.2f}": {"known_found": _share_at(known, t),
                                              "lacking_close": _share_at(lacking, t)} for t in NEAR_DUPLICATE_GRID}}
    return measured


def _share_at(similarities: list[float], threshold: float) -> float | None:
    return round(sum(s >= threshold for s in similarities) / len(similarities), 4) if similarities else None


def _embed(classifier):
    """(index part, texts) → the texts' vectors by that part's embedder, through the index's embedding cache."""
    from service.evaluation.runner import embedded

    routes = {route.name: route for route in classifier.routes()}
    return lambda part, texts: embedded(classifier.settings, routes[part].embedder, list(texts))


def _searched(classifier, route, films: list[Film], titles: TitleIndex) -> list[Case]:
    from service.evaluation.runner import embedded

    vectors = embedded(classifier.settings, route.embedder, [f.plot for f in films])
    return cases(films, route.index.search(vectors, SEARCHED), titles)


def _told_again_left_out(cases_: list[Case]) -> list[Case]:
    """The cases whose own film's plot is not the same text told again (exclusion.NEAR_DUPLICATE): other words."""
    return [c for c in cases_ if max((n.similarity for n in c.neighbours if id(n.film) in c.own), default=0.0)
            < NEAR_DUPLICATE["english"]]


def _without_themselves(classifier, titles: TitleIndex, held_out: HeldOut) -> list[Case]:
    """The plots of the reference's validation split (scoring.splits.validation_split) that are no evaluation film,
    each searched without its own film: descriptions of films the reference lacks, written as its plots are, whose
    sequel or remake it may hold."""
    from service.evaluation.runner import embedded
    from service.scoring.splits import validation_split

    reference = classifier.index.films
    films = held_out.keep("reference validation split", [reference[i] for i in validation_split(len(reference))[1]])
    vectors = embedded(classifier.settings, classifier.english.embedder, [f.plot for f in films])
    found = classifier.english.index.search(vectors, SEARCHED + 1)
    cases_ = []
    for film, neighbours in zip(films, found):
        own = {id(f) for f in titles.of(film).films} | {id(film)}
        cases_.append(Case(film, frozenset(), [n for n in neighbours if id(n.film) not in own]))
    return cases_
