"""A build takes the corrections in: the current correction of each film (served.Newest, as the service serves
them) replaces the labels of the reference film it names (its `film` key is that film's), and is a film of its
own, source "corrections", otherwise. The manifest records the store and the last change the build read
(`through_change`): the side index serves what became served after it (served.py)."""
from __future__ import annotations

from dataclasses import replace

from service.corpus import Corpus, Film, SourceStats
from service.films import film_key
from service.corrections.served import Newest
from service.corrections.records import Correction

SOURCE = "corrections"


def fold(corpus: Corpus, corrections: list[Correction], through_change: int = 0, store: str | None = None) -> None:
    """Into `corpus`, in place; its summary then says how many replaced a film's labels and how many were added
    (`corrections` in Corpus.summary). `corrections` are those served through change `through_change` of the
    store `store` (store.snapshot): superseded ones are left out here."""
    stats = SourceStats(SOURCE)
    replaced = 0
    by_key = {film_key(film.title, film.year): i for i, film in enumerate(corpus.films)} if corrections else {}
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
    if corrections:
        corpus.sources[SOURCE] = stats
    corpus.corrections = {"store": store, "through_change": through_change, "read": stats.read,
                          "superseded": len(corrections) - stats.read, "added": stats.kept, "replaced": replaced}


def not_read(reason: str) -> dict:
    """What a build records when the store could not be read: no change of any store, so every correction is served
    beside the index it built."""
    return {"store": None, "through_change": 0, "read": 0, "superseded": 0, "added": 0, "replaced": 0,
            "not_read": reason}


def folded_through(manifest: dict | None, store: str) -> int:
    """The last change of the store `store` that the index holds: 0 for an index built before any, or beside
    another store (a file replaced or started afresh: none of its corrections is in the index)."""
    folded = ((manifest or {}).get("summary") or {}).get("corrections") or {}
    if "through_change" in folded:
        return folded["through_change"] if folded.get("store") == store else 0
    # a build of the version before: "through correction T", which the upgrade made change T (schema.py)
    return folded.get("through", 0)
