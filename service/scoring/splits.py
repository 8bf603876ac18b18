"""How films are split for tuning and calibration, the same way everywhere (the build, training, calibrate-llm,
tune-recognition, make eval): a seeded validation split of the reference, and the halves of a dev file."""
from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from service.films import Titled, normalise_title


def validation_split(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) positions, seeded."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut = int(n * fraction)
    return sorted(order[cut:]), sorted(order[:cut])


def halves(films: Sequence[Titled]) -> tuple[list, list]:
    """(calibration, evaluation) halves of a dev file, by a hash of each title: rules and the LLM's say are chosen on
    one half and measured on the other."""
    def first_half(film: Titled) -> bool:
        return hashlib.sha1(normalise_title(film.title).encode("utf-8")).digest()[0] % 2 == 0

    return [f for f in films if first_half(f)], [f for f in films if not first_half(f)]
