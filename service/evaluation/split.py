"""Keeping evaluation honest: evaluation films are removed from the reference, and knobs are tuned on a
validation split carved from the reference, never on the evaluation file."""
from __future__ import annotations

import random
from collections.abc import Sequence

from service.corpus import Film, normalise_title


def matching_positions(reference: Sequence[Film], held_out: Sequence[Film]) -> set[int]:
    """Positions of reference films that are one of the held-out films: same normalised title (the reference
    film's own or one of its other titles: a French film held out under its French title) and, where both have
    one, the same year."""
    years_by_title: dict[str, set[int | None]] = {}
    for film in held_out:
        years_by_title.setdefault(normalise_title(film.title), set()).add(film.year)
    matches = set()
    for i, film in enumerate(reference):
        for title in (film.title, *film.aliases):
            years = years_by_title.get(normalise_title(title))
            if years is not None and (film.year is None or None in years or film.year in years):
                matches.add(i)
    return matches


def validation_split(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) positions, seeded."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut = int(n * fraction)
    return sorted(order[cut:]), sorted(order[:cut])


def halves(films: Sequence[Film]) -> tuple[list[Film], list[Film]]:
    """(calibration, evaluation) halves of a dev file, by a hash of each title: the LLM's say is calibrated
    on one half and measured on the other."""
    import hashlib

    def first_half(film: Film) -> bool:
        return hashlib.sha1(normalise_title(film.title).encode("utf-8")).digest()[0] % 2 == 0

    return [f for f in films if first_half(f)], [f for f in films if not first_half(f)]
