"""`make eval-corrections`: what editors' corrections teach the service, measured through the API.

On the evaluation file with its titles excluded from the reference (as `make eval`), a seeded half of the films
is corrected with its own labels by POST /feedback. Then (a) the corrected films are asked again by their own
description and by a paraphrase, and (b) the other half is asked again: corrected films are now neighbours of
every description, and must cost the films no one corrected nothing. All answers are the vote's (llm=false).

The paraphrase: the first sentence of a description of several; a description of one sentence (most of IMDb's)
is cut to its first two thirds of words.
"""
from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

from pydantic import SecretStr

from service.calibration import interval, paired_bootstrap
from service.corpus import Film
from service.corrections import CorrectionStore, Corrections
from service.scoring.metrics import film_counts, micro_f1_of
from service.evaluation.runner import prepare
from service.settings import Settings

TOKEN = "evaluation"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“(])")


def paraphrase(plot: str) -> str:
    sentences = _SENTENCE_END.split(plot.strip())
    if len(sentences) > 1:
        return sentences[0]
    words = plot.split()
    return " ".join(words[:max(3, (2 * len(words)) // 3)])


def run(settings: Settings, eval_path: Path, seed: int = 0, limit: int | None = None) -> dict:
    from fastapi.testclient import TestClient  # the API is what is measured

    from service.api.app import create_app

    settings = settings.replace(llm_backend="none", feedback_token=SecretStr(f"eval:{TOKEN}"))
    setup = prepare(settings, eval_path)
    films = list(setup.held_out)
    random.Random(seed).shuffle(films)
    films = films[:limit] if limit else films
    corrected, others = films[: len(films) // 2], films[len(films) // 2:]
    classifier = setup.classifier()
    with tempfile.TemporaryDirectory() as folder:
        classifier.corrections = Corrections(CorrectionStore(Path(folder) / "corrections.sqlite"),
                                             classifier.embedders(), poll_s=0)
        with TestClient(create_app(settings, classifier)) as client:
            ask = _asker(client)
            before = {"corrected": ask([f.plot for f in corrected]), "others": ask([f.plot for f in others])}
            for film in corrected:
                response = client.post("/feedback", headers={"X-API-Key": TOKEN}, json={
                    "text": film.plot, "genres": list(film.genres), "title": film.title, "year": film.year})
                response.raise_for_status()
            after = {"same": ask([f.plot for f in corrected]),
                     "paraphrase": ask([paraphrase(f.plot) for f in corrected]),
                     "others": ask([f.plot for f in others])}
        classifier.close()
    return _report(setup.labels, corrected, others, before, after) | {"data": str(eval_path), "seed": seed,
                                                                      "excluded": setup.excluded.counts()}


def _asker(client):
    def ask(texts: list[str]) -> list[dict]:
        answers = []
        for i in range(0, len(texts), 64):
            response = client.post("/classify/batch", params={"llm": "false"}, json={"descriptions": texts[i:i + 64]})
            response.raise_for_status()
            answers += response.json()["results"]
        return answers
    return ask


def _report(labels, corrected: list[Film], others: list[Film], before: dict, after: dict) -> dict:
    def counts(films, answers):
        return film_counts([f.genres for f in films], [a["genres"] for a in answers], labels)

    def row(films, answers) -> dict:
        return {"micro_f1": round(micro_f1_of(counts(films, answers)), 4),
                "recognised_as_correction": sum((a.get("recognised") or {}).get("source") == "correction"
                                                for a in answers)}

    others_before, others_after = counts(others, before["others"]), counts(others, after["others"])
    change = paired_bootstrap(others_after, others_before)
    return {
        "corrected_films": len(corrected), "other_films": len(others),
        "corrected_before": row(corrected, before["corrected"]),
        "corrected_same_text": row(corrected, after["same"]),
        "corrected_paraphrase": row(corrected, after["paraphrase"]),
        "others_before": row(others, before["others"]),
        "others_after": row(others, after["others"]),
        "others_change": round(micro_f1_of(others_after) - micro_f1_of(others_before), 4),
        "others_change_interval": interval(change),
    }
