"""A build takes the corrections in: a correction naming a reference film (its title and year, or its very
plot) replaces that film's labels; any other is a film of its own, source "corrections". The manifest records
the last correction taken, so the served side index starts after it."""
from __future__ import annotations

from dataclasses import replace

from service.corpus import Corpus, Film, SourceStats, normalise_title, years_agree
from service.corrections.store import Correction

SOURCE = "corrections"


def fold(corpus: Corpus, corrections: list[Correction]) -> None:
    """Into `corpus`, in place, oldest first (a later correction of the same film wins); its summary then says
    how many replaced a film's labels and how many were added (`corrections` in Corpus.summary)."""
    if not corrections:  # the store exists but holds none: no need to key every plot
        return
    by_title: dict[str, list[int]] = {}
    by_plot: dict[str, int] = {}
    for i, film in enumerate(corpus.films):
        by_title.setdefault(normalise_title(film.title), []).append(i)
        by_plot[normalise_title(film.plot)] = i
    stats = SourceStats(SOURCE)
    replaced = 0
    for correction in corrections:
        stats.read += 1
        genres, _ = corpus.vocabulary.map_labels(correction.genres)
        if not genres:
            stats.dropped["no label of this index's vocabulary"] += 1
            continue
        target = _target(corpus.films, correction, by_title, by_plot)
        if target is None:
            by_plot[normalise_title(correction.plot)] = len(corpus.films)
            corpus.films.append(Film(correction.title or f"Correction {correction.id}", correction.year,
                                     correction.plot, tuple(genres), SOURCE))
            stats.kept += 1
        else:
            corpus.films[target] = replace(corpus.films[target], genres=tuple(genres))
            replaced += 1
    corpus.sources[SOURCE] = stats
    corpus.corrections = {"through": max((c.id for c in corrections), default=0), "read": stats.read,
                          "added": stats.kept, "replaced": replaced}


def _target(films: list[Film], correction: Correction, by_title: dict[str, list[int]],
            by_plot: dict[str, int]) -> int | None:
    if correction.title:
        for i in by_title.get(normalise_title(correction.title), []):
            if years_agree(films[i].year, correction.year):
                return i
    return by_plot.get(normalise_title(correction.plot))


def folded_through(manifest: dict | None) -> int:
    """The last correction the index holds (0 for an index built before any)."""
    return ((manifest or {}).get("summary") or {}).get("corrections", {}).get("through", 0)
