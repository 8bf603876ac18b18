"""`make build-index`: corpus → embeddings (int8 ONNX, cached) → FAISS index swapped in atomically.

The build runs in stages, one per index part, and makes the index current after each: the English part
first (the service can answer from it), then the multilingual part, whose model is several times slower
to embed with (~35 plots/s here against ~140), so a fresh machine answers long before the build is done."""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from service.confidence import ConfidenceScale, non_film_texts
from service.corpus import Corpus, load_corpus
from service.corrections.fold import fold, not_read
from service.corrections.database import StoreUnavailable
from service.corrections.store import CorrectionStore, store_location
from service.embedding import EmbeddingCache, load_embedder
from service.embedding.export import ensure_exported
from service.genres import DEFAULT, Vocabulary, from_file
from service.scoring.metrics import binarize
from service.heads import BlendedScorer, scorer_file
from service.labels import CALIBRATION_PLOTS, ZeroShotScale, nearest_plots
from service.settings import Settings
from service.scoring.splits import validation_split
from service.store import FORMAT_VERSION, Part, closest_similarity, write_index
from service.training import train_scorer
from service.vote import TEMPERATURES

log = logging.getLogger("moviegenre")


@dataclass
class BuildReport:
    corpus: Corpus
    manifest: dict
    embedded: dict[str, int] = field(default_factory=dict)   # part → plots embedded (not from the cache)
    seconds: dict[str, float] = field(default_factory=dict)  # part → seconds since the start, when it was current


def build_index(data_path: Path, index_dir: Path, settings: Settings | None = None, progress: bool = True,
                parts: list[str] | None = None, on_part: Callable[[str, dict], None] | None = None,
                vocabulary: str | Path | None = None) -> BuildReport:
    """Build the index parts (default: all the settings use), making the index current after each. The
    vocabulary: None for the default genres, "corpus" for the labels the corpus carries, or a vocabulary file."""
    settings = settings or Settings()
    started = time.perf_counter()
    corpus = load_corpus(data_path, resolve_vocabulary(vocabulary))
    fold_corrections(corpus, store_location(settings, index_dir))
    if not corpus.films:
        raise ValueError(f"no usable film in {data_path}: every row lacked a plot or a genre")
    fingerprint = corpus.fingerprint()
    report = BuildReport(corpus, {})
    done: dict[str, Part] = {}
    scorers: dict[str, BlendedScorer] = {}
    for part, model in settings.index.part_models().items():
        if parts is not None and part not in parts:
            continue
        done[part], scorer, report.embedded[part] = _build_part(part, model, corpus, fingerprint, index_dir,
                                                                settings, progress)
        if scorer is not None:
            scorers[part] = scorer
        report.manifest = write_index(index_dir, corpus.films, done, fingerprint, corpus.summary(),
                                      artifacts={scorer_file(p): s.save for p, s in scorers.items()},
                                      vocabulary=corpus.vocabulary)
        report.seconds[part] = round(time.perf_counter() - started, 1)
        if on_part:
            on_part(part, report.manifest)
    return report


def fold_corrections(corpus: Corpus, location: Path | str) -> None:
    """The editors' corrections (corrections/store.py, at `location`) become part of the reference. A store that
    cannot be read is left out, and said so: its corrections are then all served beside the index (the build records
    no change of it), so nothing is lost."""
    if isinstance(location, Path) and not location.is_file():
        return
    store = CorrectionStore(location)
    try:
        served, through = store.snapshot()
        fold(corpus, served, through, store.store_id)
    except StoreUnavailable as exc:
        log.warning("the corrections are not folded in (they are served beside the index instead): %s", exc)
        corpus.corrections = not_read(str(exc))
    finally:
        store.close()


def _build_part(part: str, model: str, corpus: Corpus, fingerprint: str, index_dir: Path, settings: Settings,
                progress: bool) -> tuple[Part, BlendedScorer | None, int]:
    ensure_exported(settings.index.exported_models(), model, progress)
    embedder = load_embedder(settings.index.exported_models(), model, settings.index.embed_workers)
    plots = [film.plot for film in corpus.films]
    cache = EmbeddingCache(Path(index_dir) / "cache", embedder.cache_name)
    vectors, embedded = cache.embed(embedder, plots, progress=progress)
    scale = _confidence_scale(embedder, cache, vectors)
    cache.save(keep=[(text, "passage") for text in plots + non_film_texts()])
    scorer = _scorer(Path(index_dir) / "cache", corpus, vectors, fingerprint, embedder.cache_name, settings, part)
    zero_shot = _zero_shot_scale(embedder, corpus, vectors)
    extra = {"blend": asdict(scorer.blend) if scorer else None, "confidence": asdict(scale) if scale else None,
             **(zero_shot.to_part() if zero_shot else {"zero_shot": None})}
    return Part(model, vectors, extra), scorer, embedded


CONFIDENCE_PLOTS = 400  # validation plots that teach what a real plot reads like
MIN_VALIDATION_PLOTS = 10


def resolve_vocabulary(spec: str | Path | None) -> Vocabulary | str:
    """None or "default": the default genres; "corpus": the corpus's own labels; else a vocabulary file."""
    if spec is None or str(spec) == "default":
        return DEFAULT
    if str(spec) == "corpus":
        return "corpus"
    return from_file(Path(spec))


def _confidence_scale(embedder, cache: EmbeddingCache, vectors) -> ConfidenceScale | None:
    """Real plots (the validation split, searched among the other films) against texts that describe no
    film; None for a corpus too small to split."""
    train, validation = validation_split(len(vectors))
    if len(validation) < MIN_VALIDATION_PLOTS:
        return None
    plots = vectors[validation[:CONFIDENCE_PLOTS]]
    others, _ = cache.embed(embedder, non_film_texts())
    return ConfidenceScale.learn(plots, closest_similarity(vectors[train], plots), others)


def _zero_shot_scale(embedder, corpus: Corpus, vectors) -> ZeroShotScale | None:
    """How the embedding scores a label it has no example of, learned on the index's own labels treated as
    unknown (labels.py); None for a corpus too small to split."""
    _, validation = validation_split(len(vectors))
    picked = validation[:CALIBRATION_PLOTS]
    labels = corpus.vocabulary.labels
    if len(picked) < MIN_VALIDATION_PLOTS or len(labels) < 2:
        return None
    gold = binarize([corpus.films[i].genres for i in picked], labels)
    train = np.ascontiguousarray(np.delete(vectors, picked, axis=0), np.float32)  # a plot is not its own example
    return ZeroShotScale.learn(embedder, vectors[picked], gold, labels, nearest_plots(train))


def _scorer(cache_dir: Path, corpus: Corpus, vectors, fingerprint: str, embedded_by: str, settings: Settings,
            part: str) -> BlendedScorer | None:
    """Trained heads and tuned blend, cached by corpus, embedding, index format (the vote is tuned on its
    search) and the knobs tuning depends on."""
    labels, knobs = corpus.vocabulary.labels, settings.classification
    vocabulary = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:8]
    key = (f"{part}-{fingerprint[:16]}-{embedded_by}-f{FORMAT_VERSION}-k{knobs.top_k}-g{knobs.max_genres}"
           f"-v{vocabulary}-t{TEMPERATURES.get(part)}")
    path = cache_dir / f"scorer-{key}.npz"
    if path.exists():
        try:
            return BlendedScorer.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry only costs a retraining
            path.unlink(missing_ok=True)
    scorer = train_scorer(corpus.films, vectors, knobs.top_k, knobs.max_genres, labels,
                          text_head=part == "english", temperature=TEMPERATURES.get(part))
    if scorer is not None:
        for old in cache_dir.glob(f"scorer-{part}-*"):
            old.unlink()
        scorer.save(path)
    return scorer
