"""How much say the LLM gets in the answer (fusion.py's weight and floor), measured per model.

`moviegenre calibrate-llm` asks the configured LLM about validation films, then tries every (weight,
floor) of a grid on the vote scores and the LLM's picks it collected and keeps the best, per route
(English plots; other languages). A search over a grid always finds some gain by chance, so the best
weight is kept only when its gain over the vote (a) beats the best gain the same search finds with the
LLM's answers shuffled between films (95th percentile of 50 shuffles: the LLM must know something about
each film) and (b) holds in at least 90% of paired bootstrap resamples. Otherwise the LLM gets weight 0:
a weak or random one cannot cost accuracy. The choice is stored in the index folder keyed by the model and the
server that answered (llama.cpp serves any model under any name), with the index it was measured on; the
service uses the entry of the model and server it is configured with, and only on that index: an entry
measured on another index is stale (ignored, and /health says so).

A calibration where the LLM failed to answer (down, timing out, babbling) is refused rather than stored: an
outage would otherwise look like a model that does not beat the vote, and switch it off for good.
"""
from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from service.atomic import write_json
from service.scoring.metrics import film_counts, micro_f1_of
from service.fusion import fuse
from service.vote import decide

CALIBRATIONS_FILE = "calibrations.json"
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8)
FLOORS = (0.0, 0.05, 0.1, 0.2)
RESAMPLES = 1000
SHUFFLES = 50


MAX_FAILED_SHARE = 0.1  # of the films sent to the LLM; more failures and nothing is stored
MIN_ANSWERED = 10


class CalibrationRefused(RuntimeError):
    """Too few usable answers to measure the LLM's say: nothing was stored."""


@dataclass(frozen=True)
class Fusion:
    weight: float
    floor: float
    source: str = "default"  # "default", or what the calibration measured it on
    stale: str | None = None  # why a calibration of this model was not used (measured on another index)


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
    llm_error: str | None = None  # why the LLM gave no usable answer, when it was asked and did not


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
    failed = sum(1 for o in observations if o.llm_error)
    default_counts = film_counts(gold, answers(observations, default, max_genres))
    return {
        "films": len(observations), "llm_answered": len(asked), "llm_failed": failed,
        "vote_f1": vote["micro_f1"],
        "llm_only_f1": round(micro_f1_of(film_counts([o.gold for o in asked], [o.llm_genres for o in asked])), 4),
        "fused_default_f1": round(micro_f1_of(default_counts), 4),
        "best": {"weight": best["weight"], "floor": best["floor"], "micro_f1": best["micro_f1"],
                 "gain": round(gain, 4), "gain_by_chance_p95": round(by_chance, 4), "gain_holds_in": round(holds, 3)},
        "weight": chosen["weight"], "floor": chosen["floor"], "fused_f1": chosen["micro_f1"],
        "grid": [{k: v for k, v in row.items() if k != "_counts"} for row in grid],
    }


def check_answered(observations: Sequence[Observation], route: str) -> None:
    """Refuse to calibrate on a route where the LLM failed on more than MAX_FAILED_SHARE of the films sent to it."""
    failed = [o.llm_error for o in observations if o.llm_error]
    answered = sum(1 for o in observations if o.llm_genres)
    if answered < MIN_ANSWERED or len(failed) > MAX_FAILED_SHARE * (answered + len(failed)):
        last = f"; last error: {failed[-1]}" if failed else ""
        raise CalibrationRefused(f"{route} route: the LLM answered {answered} of {answered + len(failed)} films "
                                 f"usably{last}. Nothing was stored: check the server and run it again")


def key(llm: dict[str, str]) -> str:
    return f"{llm['backend']}:{llm['model']}@{llm['base_url']}"


def save(index_dir: Path, llm: dict[str, str], index: str, routes: dict[str, dict],
         held_out: dict | None = None) -> Path:
    """Store the routes' calibrations under the model's key, beside the other models' (atomic write), with the
    LLM (backend, model, server) and the index (index_identity) they were measured against, and what was dropped
    as films of the evaluation sets (`held_out`)."""
    path = Path(index_dir) / CALIBRATIONS_FILE
    stored = read_all(index_dir)
    stored[key(llm)] = {"llm": llm, "index": index, "routes": routes} | ({"held_out": held_out} if held_out else {})
    write_json(path, stored)
    return path


def read_all(index_dir: Path) -> dict:
    try:
        stored = json.loads((Path(index_dir) / CALIBRATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def fusion_for(index_dir: Path, llm: dict[str, str], index: str, route: str, default: Fusion) -> Fusion:
    """The calibrated fusion of this model, on this server and this index, on this route; the default when it was
    never calibrated there, or (stale) when it was calibrated on another index."""
    entry = read_all(index_dir).get(key(llm))
    chosen = entry.get("routes", {}).get(route) if isinstance(entry, dict) else None
    if not isinstance(chosen, dict) or not {"weight", "floor", "films"} <= set(chosen):
        return default
    if entry.get("index") != index:
        return replace(default, stale=f"{describe_llm(llm)} was calibrated on another index ({entry.get('index')}; "
                                      f"this one is {index}): the defaults apply until `make calibrate-llm` is rerun")
    return Fusion(float(chosen["weight"]), float(chosen["floor"]),
                  f"calibrated for {describe_llm(llm)} on {chosen['films']} films ({route})")


def describe_llm(llm: dict[str, str]) -> str:
    return f"{llm['backend']}:{llm['model']} at {llm['base_url']}"


def describe(fusion: Fusion) -> dict:
    return asdict(fusion)
