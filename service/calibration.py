"""How much say the LLM gets in the answer (fusion.py's weight and floor), measured per model.

`moviegenre calibrate-llm` asks the configured LLM about validation films, then tries every (weight,
floor) of a grid on the vote scores and the LLM's picks it collected and keeps the best, per route
(English plots; other languages). A search over a grid always finds some gain by chance, so the best
weight is kept only when its gain over the vote (a) beats the best gain the same search finds with the
LLM's answers shuffled between films (95th percentile of 50 shuffles: the LLM must know something about
each film) and (b) holds in at least 90% of paired bootstrap resamples. Otherwise the LLM gets weight 0:
a weak or random one cannot cost accuracy. The choice is stored in the index folder keyed by
"backend:model"; the service uses the entry of the model it is configured with, the defaults otherwise.
"""
from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from service.evaluation.metrics import film_counts, micro_f1_of
from service.fusion import fuse
from service.vote import decide

CALIBRATIONS_FILE = "calibrations.json"
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8)
FLOORS = (0.0, 0.05, 0.1, 0.2)
RESAMPLES = 1000
SHUFFLES = 50


@dataclass(frozen=True)
class Fusion:
    weight: float
    floor: float
    source: str = "default"  # "default", or what the calibration measured it on


@dataclass
class Observation:
    """One validation film: what the vote scored and what the service answers without the LLM (a recognised
    film's own labels, for one), what the LLM picked (None: not asked or no answer), the truth."""
    vote_scores: dict[str, float]
    vote_genres: Sequence[str]
    llm_genres: list[str] | None
    gold: Sequence[str]
    threshold: float
    route: str = "english"


def answers(observations: Sequence[Observation], fusion: Fusion | dict[str, Fusion] | None,
            max_genres: int) -> list[list[str]]:
    """The genres each film gets with this fusion, or with its route's, as the classifier decides them
    (None: the vote alone, as served)."""
    out = []
    for o in observations:
        chosen = fusion.get(o.route) if isinstance(fusion, dict) else fusion
        if chosen is None or not o.llm_genres:
            out.append(list(o.vote_genres))
        else:
            out.append(decide(fuse(o.vote_scores, o.llm_genres, chosen.weight, chosen.floor), o.threshold, max_genres))
    return out


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """micro-F1(a) - micro-F1(b) over resamples of the same films (film_counts() of each)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(resamples, len(a)))
    sums_a, sums_b = a[picks].sum(axis=1), b[picks].sum(axis=1)

    def f1(s):
        return np.where(s[:, 0] > 0, 2 * s[:, 0] / np.maximum(2 * s[:, 0] + s[:, 1] + s[:, 2], 1e-9), 0.0)

    return f1(sums_a) - f1(sums_b)


def interval(differences: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(differences, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def search(observations: Sequence[Observation], max_genres: int) -> list[dict]:
    """micro-F1 of every (weight, floor) of the grid, with the per-film counts it came from."""
    gold = [o.gold for o in observations]
    grid = []
    for weight in WEIGHTS:
        for floor in FLOORS if weight else (0.0,):
            fused = film_counts(gold, answers(observations, Fusion(weight, floor), max_genres))
            grid.append({"weight": weight, "floor": floor, "micro_f1": round(micro_f1_of(fused), 4), "_counts": fused})
    return grid


def _best(grid: list[dict]) -> dict:
    return max(grid, key=lambda row: (row["micro_f1"], -row["weight"]))


def chance_gain(observations: Sequence[Observation], max_genres: int, shuffles: int = SHUFFLES) -> float:
    """The gain over the vote the grid search finds when the LLM's answers belong to other films
    (95th percentile over shuffles)."""
    rng = random.Random(0)
    picks = [o.llm_genres for o in observations]
    gains = []
    for _ in range(shuffles):
        rng.shuffle(picks)
        shuffled = [replace(o, llm_genres=p) for o, p in zip(observations, picks)]
        grid = search(shuffled, max_genres)
        gains.append(_best(grid)["micro_f1"] - grid[0]["micro_f1"])
    return float(np.percentile(gains, 95))


def calibrate(observations: Sequence[Observation], max_genres: int, default: Fusion) -> dict:
    """The grid, the chosen fusion and what it was chosen against, for one route."""
    gold = [o.gold for o in observations]
    grid = search(observations, max_genres)
    vote, best = grid[0], _best(grid)  # grid[0] is weight 0: the vote alone
    holds = float((paired_bootstrap(best["_counts"], vote["_counts"]) > 0).mean())
    by_chance = chance_gain(observations, max_genres)
    gain = best["micro_f1"] - vote["micro_f1"]
    chosen = best if best["weight"] and gain > by_chance and holds >= 0.9 else vote
    asked = [o for o in observations if o.llm_genres]
    default_counts = film_counts(gold, answers(observations, default, max_genres))
    return {
        "films": len(observations), "llm_answered": len(asked),
        "vote_f1": vote["micro_f1"],
        "llm_only_f1": round(micro_f1_of(film_counts([o.gold for o in asked], [o.llm_genres for o in asked])), 4),
        "fused_default_f1": round(micro_f1_of(default_counts), 4),
        "best": {"weight": best["weight"], "floor": best["floor"], "micro_f1": best["micro_f1"],
                 "gain": round(gain, 4), "gain_by_chance_p95": round(by_chance, 4), "gain_holds_in": round(holds, 3)},
        "weight": chosen["weight"], "floor": chosen["floor"], "fused_f1": chosen["micro_f1"],
        "grid": [{k: v for k, v in row.items() if k != "_counts"} for row in grid],
    }


def save(index_dir: Path, model: str, routes: dict[str, dict]) -> Path:
    """Store the routes' calibrations under the model's key, beside the other models' (atomic write)."""
    path = Path(index_dir) / CALIBRATIONS_FILE
    stored = read_all(index_dir)
    stored[model] = routes
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stored, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_all(index_dir: Path) -> dict:
    try:
        return json.loads((Path(index_dir) / CALIBRATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def fusion_for(index_dir: Path, model: str | None, route: str, default: Fusion) -> Fusion:
    """The calibrated fusion of this model on this route; the default when it was never calibrated."""
    entry = read_all(index_dir).get(model or "", {}).get(route)
    if not isinstance(entry, dict) or not {"weight", "floor", "films"} <= set(entry):
        return default
    return Fusion(float(entry["weight"]), float(entry["floor"]),
                  f"calibrated for {model} on {entry['films']} films ({route})")


def describe(fusion: Fusion) -> dict:
    return asdict(fusion)
