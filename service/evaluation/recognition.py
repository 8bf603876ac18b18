"""`moviegenre tune-recognition`: the table the recognition rule (recognition.py) was chosen from.

IMDb's one-line descriptions of dev-eval/n_movies.csv (films only, not series; another source than the
reference's plots, with IMDb's genres) are searched in the served English index. A description is of a
known film when the reference holds a film of its title (and year). For each rule the table gives how
often it fires on the right film and on a wrong one, and the micro-F1 of the answers against IMDb's genres
with and without the rule: on the known films, and on the same descriptions searched as if the reference
did not hold their film (plus every description of a film it never held), where a firing rule answers
with another film's labels."""
from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

from service.corpus import Film, parse_year
from service.films import TitleIndex, same_film
from service.evaluation.metrics import score
from service.genres import DEFAULT, split_labels
from service.recognition import RULES, NamesRule, recognise

SIMILARITIES = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
LEADS = (0.0, 0.05, 0.1, 0.15)


def descriptions(path: Path) -> list[Film]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["description"] and "–" not in r["year"] and "Add a Plot" not in r["description"]]
    films = [Film(r["title"], parse_year(r["year"]), r["description"],
                  tuple(DEFAULT.map_labels(split_labels(r["genre"]))[0]),
                  "n_movies") for r in rows]
    return [f for f in films if f.genres]


def table(classifier, path: Path) -> list[dict]:
    """`classifier` serves without recognition; the rules are applied to its answers."""
    films = descriptions(path)
    texts = [f.plot for f in films]
    served = [r.genres for i in range(0, len(texts), 64) for r in classifier.classify_many(texts[i:i + 64])]
    found = classifier.index.search(classifier.embedder.embed(texts), 12)
    known, unseen = [], []  # (film, neighbours as searched, the answer without a rule)
    for film, neighbours, answer in zip(films, found, served):
        if any(same_film(film, n.film) for n in neighbours):
            known.append((film, neighbours, answer))
            neighbours = [n for n in neighbours if not same_film(film, n.film)]
        unseen.append((film, neighbours, answer))
    rows = []
    for similarity in SIMILARITIES:
        for lead in LEADS:
            row = {"similarity": similarity, "lead": lead, "known": len(known), "unseen": len(unseen)}
            for name, cases in (("known", known), ("unseen", unseen)):
                fires = [len(ns) > 1 and ns[0].similarity >= similarity and ns[0].similarity - ns[1].similarity >= lead
                         for _, ns, _ in cases]
                answers = [list(ns[0].film.genres) if fire else answer for (_, ns, answer), fire in zip(cases, fires)]
                gold = [film.genres for film, _, _ in cases]
                row[f"{name}_fires"] = sum(fires)
                row[f"{name}_f1_without"] = round(score(gold, [a for _, _, a in cases])["micro_f1"], 4)
                row[f"{name}_f1_with"] = round(score(gold, answers)["micro_f1"], 4)
            row["known_right"] = sum(1 for (film, ns, _) in known if len(ns) > 1 and ns[0].similarity >= similarity
                                     and ns[0].similarity - ns[1].similarity >= lead and same_film(film, ns[0].film))
            rows.append(row)
    return rows


ML_SIMILARITIES = (0.84, 0.86, 0.88, 0.90)
ML_LEADS = (0.02, 0.03, 0.04, 0.05)
# the names rule (recognition.NamesRule) beside the multilingual route's similarity rule
NAMES_GRID = [NamesRule(weight, lead, 0.83, names) for weight in (8.0, 10.0, 12.0) for lead in (5.0, 8.0)
              for names in (2, 3)]


def multilingual_table(classifier, files: dict[str, Path], english: Path) -> list[dict]:
    """The multilingual route's rules on the calibration half of each dev file: fires on known films (right),
    and on the same descriptions searched without their film; and on IMDb's English descriptions of films the
    reference does not hold, searched on the multilingual route (the English rule fires on 4.3% of those)."""
    from service.corpus import load_corpus
    from service.evaluation.split import halves

    route = classifier.multilingual
    titles = TitleIndex(route.index.films)

    def own(film: Film) -> set[int]:
        """The reference's films that are this one: the same title (or another of its titles) and year."""
        return {id(f) for f in titles.of(film).films}

    cases: dict[str, tuple[list, list]] = {}
    for code, path in files.items():
        films = halves(load_corpus(path).films)[0]
        found = route.index.search(route.embedder.embed([f.plot for f in films], role="passage"), 12)
        known, unseen = [], []
        for film, neighbours in zip(films, found):
            if ids := own(film):
                known.append((neighbours, id(neighbours[0].film) in ids, film.plot, ids))
                unseen.append(([n for n in neighbours if id(n.film) not in ids], False, film.plot, ids))
        cases[code] = (known, unseen)
    others = [f for f in descriptions(english) if not titles.holds(f.title)]
    english_found = route.index.search(route.embedder.embed([f.plot for f in others], role="passage"), 12)
    rows = []
    for similarity in ML_SIMILARITIES:
        for lead in ML_LEADS:
            def fires(ns) -> bool:
                return len(ns) > 1 and ns[0].similarity >= similarity and ns[0].similarity - ns[1].similarity >= lead

            row = {"similarity": similarity, "lead": lead,
                   "english_unseen_share": round(sum(map(fires, english_found)) / max(len(english_found), 1), 4)}
            for code, (known, unseen) in cases.items():
                row[code] = {"known": len(known), "right": sum(fires(ns) and right for ns, right, _, _ in known),
                             "wrong": sum(fires(ns) and not right for ns, right, _, _ in known),
                             "unseen_share": round(sum(fires(ns) for ns, *_ in unseen) / max(len(unseen), 1), 4)}
            rows.append(row)
    return rows + _names_rows(classifier, cases, list(zip([f.plot for f in others], english_found)))


def _names_rows(classifier, cases: dict[str, tuple[list, list]], english: list) -> list[dict]:
    """The names rules of NAMES_GRID, each beside the multilingual route's similarity rule as served."""
    rows = []
    for rule in NAMES_GRID:
        def found(text, neighbours):
            return recognise(neighbours, RULES["multilingual"]) or classifier.names.recognise(text, neighbours, rule)

        row = {"names_rule": asdict(rule), "english_unseen_share": round(
            sum(found(text, ns) is not None for text, ns in english) / max(len(english), 1), 4)}
        for code, (known, unseen) in cases.items():
            taken = [found(text, ns) for ns, _, text, _ in known]
            row[code] = {"known": len(known),
                         "right": sum(t is not None and id(t.film) in ids for t, (*_, ids) in zip(taken, known)),
                         "wrong": sum(t is not None and id(t.film) not in ids for t, (*_, ids) in zip(taken, known)),
                         "unseen_share": round(sum(found(text, ns) is not None for ns, _, text, _ in unseen)
                                               / max(len(unseen), 1), 4)}
        rows.append(row)
    return rows
