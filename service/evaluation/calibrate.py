"""`moviegenre calibrate-llm`: the configured LLM on validation films, every fusion of the grid tried on its
answers (calibration.py), the chosen one stored in the index folder for that model.

English: a seeded sample of the reference's validation split, those films (and any of the same title) taken
out of the index and the heads retrained without them, as `make eval` does with its films. Other languages:
the calibration half of each multilingual dev file (`make eval` measures on the other half). Never a film of a set
`make eval` reports on: held_out.py drops them from the sample and the halves, and the stored calibration records
what it dropped. The LLM's answers are kept on disk: a rerun or a changed grid makes no new call. When the LLM
failed on too many films (down, timing out, unusable answers), nothing is stored (CalibrationRefused).
"""
from __future__ import annotations

import random
from pathlib import Path

from service import calibration
from service.calibration import Fusion, Observation
from service.corpus import Film
from service.evaluation.held_out import HeldOut, evaluation_sets
from service.evaluation.runner import held_out_of_index, llm_observations, prepare, prepare_held_out
from service.scoring.splits import halves, validation_split
from service.settings import Settings
from service.store import index_identity, read_manifest


def run(settings: Settings, films: int = 300, foreign_films: int = 50, languages: dict[str, Path] | None = None,
        progress: bool = True) -> dict:
    """Calibrate, store, and return what was measured per route and what was dropped as evaluation films."""
    llm = settings.llm.identity()
    if llm is None:
        raise ValueError("no LLM is configured: set LLM_BACKEND (ollama or openai) to calibrate it")
    default = Fusion(settings.classification.fusion_weight, settings.classification.fusion_floor)
    held_out = held_out_of_index(settings, evaluation_sets(settings))
    observed = {"english": _english(settings, films, progress, held_out)}
    if languages and settings.index.multilingual_model:
        foreign = [o for code, path in languages.items()
                   for o in _foreign(settings, path, foreign_films, progress, code, held_out)
                   if o.route == "multilingual"]
        if foreign:
            observed["multilingual"] = foreign
    for route, observations in observed.items():
        calibration.check_answered(observations, route)
    routes = {route: calibration.calibrate(observations, settings.classification.max_genres, default)
              for route, observations in observed.items()}
    index = index_identity(read_manifest(settings.index.dir) or {})
    path = calibration.save(settings.index.dir, llm, index, routes, held_out.record())
    return {"model": calibration.describe_llm(llm), "routes": routes, "stored": str(path), "index": index,
            "held_out": held_out.record()}


def _english(settings: Settings, films: int, progress: bool, held_out: HeldOut) -> list[Observation]:
    def validation_sample(reference: list[Film], vocabulary) -> list[Film]:
        _, validation = validation_split(len(reference))
        kept = held_out.keep("reference validation split", [reference[i] for i in validation])
        return random.Random(0).sample(kept, min(films, len(kept)))

    setup = prepare_held_out(settings.replace(llm_backend="none"), validation_sample)
    setup.settings = settings
    return llm_observations(setup, setup.held_out, progress, "calibrating: English validation films").observations


def _foreign(settings: Settings, path: Path, films: int, progress: bool, code: str,
             held_out: HeldOut) -> list[Observation]:
    setup = prepare(settings.replace(llm_backend="none"), path)
    setup.settings = settings
    half = held_out.keep(f"{path.name} (calibration half)", halves(setup.held_out)[0])
    sample = random.Random(0).sample(half, min(films, len(half)))
    return llm_observations(setup, sample, progress, f"calibrating: {code} dev films").observations
