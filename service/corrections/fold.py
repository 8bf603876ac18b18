"""A build takes the corrections in: the current correction of each film (store.Newest, as the service serves
them) replaces the labels of the reference film it names (its `film` key is that film's), and is a film of its
own, source "corrections", otherwise. The manifest records the last correction taken, so the served side index
starts after it."""
from __future__ import annotations

from dataclasses import replace

from service.corpus import Corpus, Film, SourceStats
from service.films import film_key
from service.corrections.store import Correction, Newest

SOURCE = "corrections"


def fold(corpus: Corpus, corrections: list[Correction]) -> None:
    """Into `corpus`, in place; its summary then says how many replaced a film's labels and how many were added
    (`corrections` in Corpus.summary). `corrections` are the served ones: superseded ones are left out here."""
    if not corrections:  # the store exists but holds none: no need to key every film
        return
    by_key = {film_key(film.title, film.year): i for i, film in enumerate(corpus.films)}
    stats = SourceStats(SOURCE)
    replaced = 0
    for correction in Newest(corrections).all():
        stats.read += 1
        genres, _ = corpus.vocabulary.map_labels(correction.genres)
        if not genres:
            stats.dropped["no label of this index's vocabulary"] += 1
            continue
        target = by_key.get(correction.film)
        if target is None:
            by_key[correction.film] = len(corpus.films)
            corpus.films.append(Film(correction.title or f"Correction {correction.id}", correction.year,
                                     correction.plot, tuple(genres), SOURCE))
            stats.kept += 1
        else:
            corpus.films[target] = replace(corpus.films[target], genres=tuple(genres))
            replaced += 1
    corpus.sources[SOURCE] = stats
    corpus.corrections = {"through": max((c.id for c in corrections), default=0), "read": stats.read,
                          "superseded": len(corrections) - stats.read, "added": stats.kept, "replaced": replaced}


def folded_through(manifest: dict | None) -> int:
    """The last correction the index holds (0 for an index built before any)."""
    return ((manifest or {}).get("summary") or {}).get("corrections", {}).get("through", 0)
