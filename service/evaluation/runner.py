"""`make eval`: every method on the same held-out films, reference films of the same titles excluded."""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rich.progress import track

from service import calibration
from service.calibration import Fusion, Observation
from service.classifier import Classification, Classifier, Route
from service.corpus import Film, load_corpus
from service.films import TitleIndex
from service.embedding import Embedder, EmbeddingCache, load_embedder
from service.genres import Vocabulary
from service.evaluation import methods
from service.scoring.metrics import film_counts, score
from service.evaluation.exclusion import Exclusion, exclusion
from service.evaluation.held_out import HeldOut, described, dropped_all, evaluation_sets, read_sequels
from service.scoring.splits import halves, validation_split
from service.heads import BlendedScorer
from service.language import LanguageDetector
from service.loading import detector_for
from service.llm import make_gate
from service.settings import Settings
from service.store import ReferenceIndex, load_parts, read_manifest
from service.training import train_scorer
from service.vote import TEMPERATURES

# The README's example sentence in other languages: each must find Fantasy or Adventure.
WIZARD = {
    "en": "A young wizard embarks on an adventure to defeat a dark sorcerer.",
    "de": "Ein junger Zauberer zieht aus, um einen dunklen Magier zu besiegen.",
    "fr": "Un jeune sorcier part à l'aventure pour vaincre un sombre magicien.",
    "es": "Un joven mago se embarca en una aventura para derrotar a un hechicero oscuro.",
    "zh": "一个年轻的巫师踏上冒险之旅，去打败一个黑暗的魔法师。",
    "ja": "若い魔法使いが闇の魔術師を倒すために冒険に出る。",
    "ru": "Молодой волшебник отправляется в путешествие, чтобы победить тёмного колдуна.",
}


@dataclass
class Setup:
    """The reference without the evaluation films (every index part), split for tuning, and the
    evaluation films."""
    settings: Settings
    embedders: dict[str, Embedder]
    parts: dict[str, ReferenceIndex]
    excluded: Exclusion
    held_out: list[Film]
    detector: LanguageDetector | None
    _scorers: dict[str, BlendedScorer | None] = field(default_factory=dict)

    @property
    def reference(self) -> ReferenceIndex:
        return self.parts["english"]

    @property
    def labels(self) -> tuple[str, ...]:
        """What is scored: the index vocabulary's learned labels (the 18 shared genres by default)."""
        return self.reference.vocabulary.labels

    def split(self) -> tuple[ReferenceIndex, list[Film], np.ndarray]:
        """(training part, validation films, their vectors) of the English reference, for the classic methods."""
        _, val_pos = validation_split(len(self.reference))
        vectors = self.reference.vectors()
        return self.reference.without(set(val_pos)), [self.reference.films[i] for i in val_pos], vectors[val_pos]

    def scorer(self, part: str = "english") -> BlendedScorer | None:
        """The served heads and blend, trained exactly as `make build-index` does, on the reference
        without the evaluation films."""
        if part not in self._scorers:
            index = self.parts[part]
            knobs = self.settings.classification
            self._scorers[part] = train_scorer(index.films, index.vectors(), knobs.top_k, knobs.max_genres,
                                               self.labels, text_head=part == "english",
                                               temperature=TEMPERATURES.get(part))
        return self._scorers[part]

    def classifier(self, llm: bool = False) -> Classifier:
        """What /classify serves, over this reduced reference."""
        multilingual = None
        if "multilingual" in self.parts:
            multilingual = Route.of("multilingual", self.parts["multilingual"], self.embedders["multilingual"],
                                    self.scorer("multilingual"), self.settings)
        backend = make_gate(self.settings, llm_answers_file(self.settings)) if llm else None
        return Classifier(self.reference, self.embedders["english"], backend, self.settings, self.scorer("english"),
                          multilingual, self.detector)


def llm_answers_file(settings: Settings) -> Path:
    """The LLM's answers kept on disk for evaluation and calibration: a rerun makes no new call."""
    return settings.index.dir / "cache" / "llm-answers.sqlite"


def prepare(settings: Settings, eval_path: Path) -> Setup:
    return prepare_held_out(settings, lambda reference, vocabulary: load_corpus(eval_path, vocabulary).films)


def prepare_evaluation_half(settings: Settings, path: Path) -> Setup:
    """A dev file's evaluation half held out (scoring.splits.halves: the calibration half chose the recognition model
    and the LLM's say), the reference without its films."""
    return prepare_held_out(settings.replace(llm_backend="none"),
                            lambda reference, vocabulary: halves(load_corpus(path, vocabulary).films)[1])


def prepare_held_out(settings: Settings, held_out_of) -> Setup:
    """The index without the films `held_out_of(reference films, its vocabulary)` returns: matched by title and
    year, by plot text, or by a plot that close, and every film the served recognition would take one for
    (exclusion.exclusion)."""
    embedders, parts = index_parts(settings)
    held_out = held_out_of(parts["english"].films, parts["english"].vocabulary)
    plots = [film.plot for film in held_out]
    dropped = exclusion(parts, held_out, {p: embedded(settings, embedders[p], plots) for p in parts})
    detector = detector_for(settings.index.multilingual_model) if "multilingual" in parts else None
    return Setup(settings, embedders, {p: index.without(set(dropped.positions)) for p, index in parts.items()},
                 dropped, held_out, detector)


def index_parts(settings: Settings) -> tuple[dict[str, Embedder], dict[str, ReferenceIndex]]:
    """Every part of the index with its embedder; FileNotFoundError when a part the settings name is not built."""
    models = settings.index.part_models()
    embedders = {p: load_embedder(settings.index.exported_models(), m, settings.index.embed_workers)
                 for p, m in models.items()}
    parts = load_parts(settings.index.dir, {p: (m, embedders[p].dim) for p, m in models.items()})
    if set(parts) != set(models):
        missing = ", ".join(sorted(set(models) - set(parts)))
        raise FileNotFoundError(f"the index lacks its {missing} part: run `make build-index`")
    return embedders, parts


def held_out_of_index(settings: Settings, sets: dict[str, list[Film]]) -> HeldOut:
    """The evaluation sets against the index's films, embedded by its parts' models (through the embedding cache)."""
    embedders, parts = index_parts(settings)
    return HeldOut(sets, parts["english"].films, lambda part, texts: embedded(settings, embedders[part], list(texts)),
                   list(parts))


def fp32_variant(setup: Setup) -> Setup:
    """The same setup with the English part embedded by the unquantised model (torch), for comparison."""
    from service.embedding.models import spec_for
    from service.embedding.reference import TorchEmbedder

    embedder = TorchEmbedder(spec_for(setup.settings.index.embedding_model))
    cache = EmbeddingCache(setup.settings.index.dir / "cache", embedder.cache_name)
    plots = [f.plot for f in setup.reference.films]
    vectors, _ = cache.embed(embedder, plots, progress=True)
    cache.save()
    reference = ReferenceIndex(setup.reference.films, vectors, setup.reference.manifest)
    return replace(setup, embedders=setup.embedders | {"english": embedder},
                   parts=setup.parts | {"english": reference}, _scorers={})


def _gold(films: list[Film]) -> list[tuple[str, ...]]:
    return [f.genres for f in films]


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


@dataclass
class LLMRun:
    observations: list[Observation]
    seconds: list[float]
    calibrated: dict[str, Fusion]  # per route, the fusion the classifier took for its model


def llm_observations(setup: Setup, films: list[Film], progress: bool = True,
                     description: str = "asking the LLM") -> LLMRun:
    """The served pipeline with its LLM, one film at a time as /classify runs: what the vote scored and
    what the LLM picked, for any fusion to be tried on afterwards."""
    classifier = setup.classifier(llm=True)
    routes = {route.name: route for route in classifier.routes()}
    run = LLMRun([], [], {name: route.fusion for name, route in routes.items()})
    for route in routes.values():  # asked on every route, whatever its calibration: fusions come afterwards
        route.fusion = Fusion(setup.settings.classification.fusion_weight, setup.settings.classification.fusion_floor)
    try:
        for film in track(films, description=description, disable=not progress):
            result, took = _timed(lambda: classifier.classify(film.plot))
            failed = result.fallback_reason if result.llm_genres is None and result.recognised is None else None
            run.observations.append(Observation(result.vote_scores, result.vote_genres, result.llm_genres,
                                                film.genres, routes[result.route].threshold, result.route, failed))
            run.seconds.append(took)
    finally:
        classifier.close()
    return run


def evaluate_served_with_llm(setup: Setup, films: list[Film], progress: bool = True) -> dict:
    """The vote alone, the LLM alone, fused with the default setting and with the model's calibration, from
    the same calls; paired bootstrap 95% intervals of each fusion minus the vote."""
    run = llm_observations(setup, films, progress, "served + LLM")
    observations, max_genres = run.observations, setup.settings.classification.max_genres
    default = Fusion(setup.settings.classification.fusion_weight, setup.settings.classification.fusion_floor)
    gold = [o.gold for o in observations]
    vote_answers = calibration.answers(observations, None, max_genres)
    vote = film_counts(gold, vote_answers)
    asked = [o for o in observations if o.llm_genres]
    out = {"vote": score(gold, vote_answers, setup.labels),
           "llm_only": score([o.gold for o in asked], [o.llm_genres for o in asked], setup.labels) | {
               "llm_failures": len(observations) - len(asked)}}
    for name, fusion in (("fused_default", default), ("fused_calibrated", run.calibrated)):
        predicted = calibration.answers(observations, fusion, max_genres)
        gain = calibration.paired_bootstrap(film_counts(gold, predicted), vote)
        used = {route: vars(f) for route, f in fusion.items()} if isinstance(fusion, dict) else vars(default)
        out[name] = score(gold, predicted, setup.labels) | {"fusion": used,
                                                             "minus_vote_95": calibration.interval(gain)}
    out["fused_calibrated"] |= {"latency_ms": 1000 * float(np.mean(run.seconds)),
                                "latency_p95_ms": 1000 * float(np.percentile(run.seconds, 95))}
    return out


def _embed(setup: Setup, texts: list[str]) -> np.ndarray:
    return embedded(setup.settings, setup.embedders["english"], texts)


def embedded(settings: Settings, embedder: Embedder, texts: list[str]) -> np.ndarray:
    """The texts' vectors, through the index's embedding cache (a rerun embeds nothing again)."""
    cache = EmbeddingCache(settings.index.dir / "cache", embedder.cache_name)
    vectors, new = cache.embed(embedder, texts)
    if new:
        cache.save()
    return vectors


def evaluate_classic(setup: Setup, name: str) -> dict:
    """Fit on the training split, tune the threshold on validation, refit on the whole reference."""
    train, validation, _ = setup.split()
    labels = setup.labels
    model = methods.fit_classic(name, [f.plot for f in train.films], _gold(train.films), labels)
    val_scores = methods.classic_scores(model, [f.plot for f in validation])
    threshold = methods.tune_threshold(val_scores, _gold(validation), labels)
    model = methods.fit_classic(name, [f.plot for f in setup.reference.films], _gold(setup.reference.films), labels)
    scores, seconds = _timed(lambda: methods.classic_scores(model, [f.plot for f in setup.held_out]))
    return _scored(setup, methods.predict(scores, threshold, labels), seconds) | {"threshold": threshold}


def evaluate_knn(setup: Setup, eval_vectors: np.ndarray) -> dict:
    k = setup.settings.classification.top_k
    train, validation, validation_vectors = setup.split()
    labels = setup.labels
    val_scores = methods.knn_scores(train, validation_vectors, k, labels)
    threshold = methods.tune_threshold(val_scores, _gold(validation), labels)
    scores, seconds = _timed(lambda: methods.knn_scores(setup.reference, eval_vectors, k, labels))
    return _scored(setup, methods.predict(scores, threshold, labels), seconds) | {"threshold": threshold, "k": k}


def evaluate_served(setup: Setup) -> dict:
    """Exactly what /classify answers with no LLM, over the reference without the evaluation films, with
    the share of films each route answered."""
    classifier = setup.classifier()
    classifier.recogniser.warm_up()  # as the service does when it starts: not in the films' time
    plots = [f.plot for f in setup.held_out]
    results, seconds = _timed(lambda: [r for i in range(0, len(plots), 64)
                                       for r in classifier.classify_many(plots[i:i + 64])])
    routes = {name: sum(r.route == name for r in results) for name in ("english", "multilingual")}
    languages: dict[str, int] = {}
    for r in results:
        languages[r.language or "?"] = languages.get(r.language or "?", 0) + 1
    return _scored(setup, [r.genres for r in results], seconds) | {
        "routes": routes, "languages": languages, "recognised": sum(r.recognised is not None for r in results)}


def evaluate_known(settings: Settings, films: list[Film]) -> dict:
    """The films as the served index holds them (no exclusion): what a person gets for a film the
    reference knows, recognised or not."""
    from service.loading import load_classifier

    classifier = load_classifier(settings.replace(llm_backend="none"))
    plots = [f.plot for f in films]
    results = [r for i in range(0, len(plots), 64) for r in classifier.classify_many(plots[i:i + 64])]
    return score(_gold(films), [r.genres for r in results], classifier.vocabulary.labels) | {
        "recognised": sum(r.recognised is not None for r in results)} | _recall(classifier.index.films, films, results)


def _recall(reference: list[Film], films: list[Film], results: list[Classification]) -> dict:
    """Recognition as films.TitleIndex tells films apart: of the films whose title and year name their own
    reference films (matched), how many were recognised as one of them (right) or as another film (wrong), or
    answered with a series' shared genres (series; series_own: their own film one of the series'); and of all the
    films, how many were recognised as a film of another year (a sequel, a prequel, a remake)."""
    titles = TitleIndex(reference)
    matched = right = wrong = other_year = series = series_own = 0
    for film, result in zip(films, results):
        own = {id(f) for f in titles.of(film).films}
        found = result.recognised
        taken = found.film if found is not None else None
        matched += bool(own)
        right += bool(own) and taken is not None and id(taken) in own
        wrong += bool(own) and taken is not None and id(taken) not in own
        other_year += taken is not None and None not in (taken.year, film.year) and taken.year != film.year
        series += found is not None and taken is None
        series_own += found is not None and taken is None and any(id(f) in own for f in found.series)
    return {"recognised_matched": matched, "recognised_right": right, "recognised_wrong": wrong,
            "recognised_other_year": other_year, "recognised_series": series, "recognised_series_own": series_own}


def evaluate_sequels(settings: Settings, films: list[Film]) -> dict:
    """New descriptions of sequels the reference holds (held_out.read_sequels), served by the index as it is: each
    recognised as itself, as another film (of its series or not), answered with its series' shared genres, or
    not recognised."""
    from service.loading import load_classifier

    classifier = load_classifier(settings.replace(llm_backend="none"))
    try:
        results = classifier.classify_many([f.plot for f in films])
        titles = TitleIndex(classifier.index.films)
        outcomes = [_sequel_outcome(film, result, titles) for film, result in zip(films, results)]
    finally:
        classifier.close()
    counts = {kind: sum(o["outcome"] == kind for o in outcomes)
              for kind in ("itself", "another film", "series", "series without it", "none")}
    return {"films": len(films), "held": sum(o["held"] for o in outcomes), **counts, "each": outcomes}


def _sequel_outcome(film: Film, result: Classification, titles: TitleIndex) -> dict:
    own = {id(f) for f in titles.of(film).films}
    found = result.recognised
    if found is None:
        outcome, answer = "none", None
    elif found.film is not None:
        outcome, answer = "itself" if id(found.film) in own else "another film", found.film.title
    else:
        outcome = "series" if any(id(f) in own for f in found.series) else "series without it"
        answer = " / ".join(f.title for f in found.series)
    return {"title": film.title, "held": bool(own), "outcome": outcome, "answer": answer, "genres": result.genres}


def wizard_check(setup: Setup) -> dict:
    """The README's example sentence in seven languages, served as /classify serves it."""
    classifier = setup.classifier()
    answers = {}
    for code, text in WIZARD.items():
        result = classifier.classify(text)
        answers[code] = {"genres": result.genres, "language": result.language, "route": result.route,
                         "ok": bool({"Fantasy", "Adventure"} & set(result.genres))}
    return answers


def _scored(setup: Setup, predicted: list[list[str]], seconds: float) -> dict:
    return score(_gold(setup.held_out), predicted, setup.labels) | {
        "latency_ms": 1000 * seconds / max(len(predicted), 1)}


def run(settings: Settings, eval_path: Path, llm_limit: int | None = None, progress: bool = True,
        languages: dict[str, Path] | None = None, fp32: bool = False, llm_language_limit: int = 50,
        sequels: Path | None = None) -> dict:
    """All methods on the evaluation file; the served pipeline on each file of `languages` too; with
    `fp32`, the served pipeline with the unquantised English model beside the int8 one; with `sequels`, recognition
    of those sequel descriptions (held_out.read_sequels); with an LLM configured, the LLM path on `llm_limit` films
    (seeded sample), and on `llm_language_limit` films of each language file's evaluation half (the other half is
    calibrate-llm's). What the stored calibrations dropped of these evaluation sets is reported beside."""
    with_llm = settings.llm.backend != "none"
    if not Vocabulary.from_manifest((read_manifest(settings.index.dir) or {}).get("vocabulary")).is_default():
        languages, genre_checks, sequels = {}, [], None  # the dev files, the wizard sentence and the sequels speak
    else:                                                # the default genres
        genre_checks = ["wizard"]
    sequels = sequels if sequels is not None and sequels.exists() else None
    steps = ["prepare", *methods.CLASSIC, "knn", "served", "known"] + (["fp32"] if fp32 else []) + \
        [f"language:{code}" for code in (languages or {})] + genre_checks + (["sequels"] if sequels else []) + \
        ((["llm"] + [f"llm:{code}" for code in (languages or {})]) if with_llm else [])
    results: dict = {"data": str(eval_path), "methods": {}, "languages": {},
                     "calibration": calibration_record(settings, evaluation_sets(settings, eval_path, languages or {},
                                                                                 sequels))}
    language_setups: dict[str, Setup] = {}
    for step in track(steps, description="evaluating", disable=not progress):
        if step == "sequels":
            # relative to where the command runs: the default path is absolute, and results.json is committed
            results["sequels"] = evaluate_sequels(settings, read_sequels(sequels)) | {"data": os.path.relpath(sequels)}
        elif step == "prepare":
            setup = prepare(settings.replace(llm_backend="none"), eval_path)
            results |= {"films": len(setup.held_out), "excluded": setup.excluded.counts()}
        elif step in methods.CLASSIC:
            results["methods"][step] = evaluate_classic(setup, step)
        elif step == "knn":
            results["methods"]["knn"] = evaluate_knn(setup, _embed(setup, [f.plot for f in setup.held_out]))
        elif step == "served":
            results["served"] = evaluate_served(setup)
        elif step == "known":
            results["served_known"] = evaluate_known(settings, setup.held_out)
        elif step == "fp32":
            results["served_fp32"] = evaluate_served(fp32_variant(setup))
        elif step.startswith("language:"):
            code = step.split(":", 1)[1]
            other = language_setups[code] = prepare_evaluation_half(settings, languages[code])
            results["languages"][code] = evaluate_served(other) | {
                "data": str(languages[code]), "half": "evaluation", "excluded": other.excluded.counts(),
                "known": evaluate_known(settings, other.held_out)}
        elif step == "wizard":
            results["wizard"] = wizard_check(setup)
        elif step == "llm":
            setup.settings = settings
            results["llm"] = evaluate_served_with_llm(setup, _sample(setup.held_out, llm_limit), progress=False)
        else:
            other = language_setups[step.split(":", 1)[1]]
            other.settings = settings
            films = _sample(other.held_out, llm_language_limit)
            results["languages"][step.split(":", 1)[1]]["llm"] = evaluate_served_with_llm(other, films, False)
    return results


def calibration_record(settings: Settings, sets: dict[str, list[Film]]) -> dict:
    """What the stored fits dropped of the evaluation sets (held_out.HeldOut.record): the recognition models'
    (service/data/recognition.json) and the configured LLM's calibration, each with whether it dropped every one of
    these sets."""
    from service.recognition import MODELS_FILE

    stored = {"recognition": _stored_record(MODELS_FILE)}
    llm = settings.llm.identity()
    if llm is not None:
        entry = calibration.read_all(settings.index.dir).get(calibration.key(llm), {})
        stored["llm"] = entry.get("held_out") if isinstance(entry, dict) else None
    return {"evaluation_sets": described(sets),
            "stored": {name: record | {"same_sets": dropped_all(record, sets)} if record else None
                       for name, record in stored.items()}}


def _stored_record(path: Path) -> dict | None:
    import json

    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("held_out")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def _sample(films: list[Film], limit: int | None) -> list[Film]:
    return random.Random(0).sample(films, limit) if limit and limit < len(films) else films
