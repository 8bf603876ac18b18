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
from pathlib import Path

from service.corpus import Film, normalise_title, parse_year
from service.evaluation.metrics import score
from service.genres import DEFAULT, split_labels

SIMILARITIES = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
LEADS = (0.0, 0.05, 0.1, 0.15)


def _same(a: Film, b: Film) -> bool:
    """The same film: the same normalised title and, where both have one, the same year."""
    years_agree = a.year is None or b.year is None or a.year == b.year
    return years_agree and normalise_title(a.title) == normalise_title(b.title)


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
        if any(_same(film, n.film) for n in neighbours):
            known.append((film, neighbours, answer))
            neighbours = [n for n in neighbours if not _same(film, n.film)]
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
                                     and ns[0].similarity - ns[1].similarity >= lead and _same(film, ns[0].film))
            rows.append(row)
    return rows
