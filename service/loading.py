"""What a classifier is made of, loaded from the index folder and the settings: the index parts the
settings use, their embedders and trained heads, the language detector and the LLM backend. The API,
the CLI, the batch engines and the evaluation all load it from here."""
from __future__ import annotations

import logging

from service.classifier import Classifier, Route
from service.corrections import CorrectionStore, Corrections, store_location
from service.embedding import Embedder
from service.heads import load_scorer
from service.language import LanguageDetector
from service.llm import LLMGate, make_gate
from service.memory import return_large_blocks
from service.settings import Settings
from service.store import IndexLoadError, build_id_of, load_parts, read_manifest

LOAD_ATTEMPTS = 3
log = logging.getLogger("moviegenre")


def load_classifier(settings: Settings, embedders: dict[str, Embedder] | None = None,
                    detector: LanguageDetector | None = None, llm: LLMGate | None = None) -> Classifier:
    """The index parts the settings use, each with its embedder and trained heads, the language detector
    and the LLM gate. Embedders, detector and gate are reused when given (a reload: one LLM gate per process,
    so its concurrency and queue hold across reloads), else made. A build made
    current while this one was being read (`make build-index` beside a running service) is loaded instead:
    a failure is final only when the manifest did not move meanwhile."""
    return_large_blocks()
    for _ in range(LOAD_ATTEMPTS - 1):
        seen = build_id_of(read_manifest(settings.index.dir))
        try:
            return _load(settings, embedders, detector, llm)
        except IndexLoadError:
            if build_id_of(read_manifest(settings.index.dir)) == seen:
                raise
    return _load(settings, embedders, detector, llm)


def _load(settings: Settings, embedders: dict[str, Embedder] | None, detector: LanguageDetector | None,
          llm: LLMGate | None) -> Classifier:
    embedders = dict(embedders or {})
    # a part still being built may not even have its model exported yet: load what the index has
    built = (read_manifest(settings.index.dir) or {}).get("parts", {})
    models = {p: m for p, m in settings.index.part_models().items() if p == "english" or p in built}
    for part, model in models.items():
        if part not in embedders or embedders[part].model_name != model:
            embedders[part] = _embedder(settings, model)
    parts = load_parts(settings.index.dir, {p: (m, embedders[p].dim) for p, m in models.items()})
    multilingual = None
    if "multilingual" in parts:
        index = parts["multilingual"]
        multilingual = Route.of("multilingual", index, embedders["multilingual"], load_scorer(index, "multilingual"),
                                settings)
    english = parts["english"]
    detector = detector or detector_for(settings.index.multilingual_model)
    corrections = _corrections(settings, {p: embedders[p] for p in parts}, english.manifest)
    return Classifier(english, embedders["english"], llm or make_gate(settings), settings, load_scorer(english),
                      multilingual, detector, corrections)


def _corrections(settings: Settings, embedders: dict[str, Embedder], manifest: dict) -> Corrections:
    """The corrections made since this build. A store that cannot be read (a database down, a read-only index
    folder) leaves the service answering from the index alone, saying why, until it can be read."""
    store = CorrectionStore(store_location(settings))
    try:
        return Corrections(store, embedders, poll_s=settings.corrections.poll_s, manifest=manifest)
    except BaseException:
        store.close()
        raise


def detector_for(model: str) -> LanguageDetector | None:
    """The detector that routes texts to the multilingual model `model` ("": none, and no detector)."""
    if not model:
        return None
    from service.embedding.models import spec_for

    return LanguageDetector(spec_for(model).unread_languages)


def _embedder(settings: Settings, model: str) -> Embedder:
    from service.embedding import ModelMissing, load_embedder

    try:
        return load_embedder(settings.index.exported_models(), model, settings.index.embed_workers)
    except ModelMissing as exc:
        raise IndexLoadError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime and the tokenizers raise their own on a damaged file
        raise IndexLoadError(f"the exported {model} model in {settings.index.exported_models()} cannot be loaded "
                             f"({type(exc).__name__}: {str(exc)[:200]}): delete it and run `make build-index`") from exc
