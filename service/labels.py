"""Scoring the labels a request brings (`labels` on /classify): a label the index knows is scored as always;
one it does not know is answered zero-shot, by the LLM where one answered (its schema built from the
request's labels), and otherwise by the embedding.

The embedding's zero-shot score compares the description with the label's *prototype*: the mean of the
PROTOTYPE_PLOTS reference plots closest to the label's name. A label's name alone ("Heist") is a poor point in the
multilingual model's space; the plots nearest to it tell what films of it are about, and plot against plots is
the comparison the model makes best. Chosen on the keyword taxonomy's selection split (`make eval-keywords` reports
the other 20%): the true keyword's mean reciprocal rank among 40 goes 0.413 (the name) → 0.498 (50 plots; 10, 25
and 100 plots 0.453, 0.480, 0.490; "a film about <label>" as the name 0.439, and as the prototype's seed 0.444).
How much closer the description is to the label's prototype than to the prototypes of the index's own labels on
average (the centred similarity) is turned into a probability by a logistic regression learned at build time on
the index's own labels treated as unknown (ZeroShotScale: validation plots against prototypes made of the other
plots). A label that is all but a synonym of a label the index knows ("Krimi" and "Crime" for the multilingual
model) also takes that label's score: the reference films carrying it are the examples."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np
from cachetools import LRUCache

from service.embedding import Embedder
from service.genres import Vocabulary, label_key
from service.store import ReferenceIndex

# label to label (e5): synonyms measured 0.918-0.952 ("Komödie"/"Comedy", "Krimi"/"Crime"), other pairs up to 0.891
SYNONYM_SIMILARITY = 0.91
LLM_PICK_SCORE = 0.9     # the LLM's first pick; each later pick 0.1 lower
CALIBRATION_PLOTS = 400
PROTOTYPE_PLOTS = 50
# a zero-shot label is answered when its probability passes the scale's threshold and is at least this share of the
# best zero-shot label's: the threshold, learned on the index's 18 genres, admitted 4.95 of 40 keywords a film (the
# films carry 1.6); on the keyword selection split micro-F1 0.245 → 0.276 with 2.63 a film (0.5: 0.264, 0.8: 0.275)
RELATIVE_TO_BEST = 0.7

# the plots closest to each of some label vectors (labels × k × dim), from wherever the plots are
NearestPlots = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float
    source: str  # "index", "llm" or "embedding"
    passes: bool


@dataclass(frozen=True)
class ZeroShotScale:
    weight: float
    bias: float
    threshold: float  # the probability from which a label is answered: the best micro-F1 on the index's own labels
    prototype_plots: int = 0  # what a label is compared as: its name (0, an index built before prototypes) or
    #                           the mean of this many plots

    @classmethod
    def learn(cls, embedder: Embedder, plots: np.ndarray, gold: np.ndarray, labels: Sequence[str],
              nearest: NearestPlots) -> ZeroShotScale:
        """From plots' vectors and which of `labels` each carries (a 0/1 matrix): the logistic regression of
        "the plot carries the label" on the centred similarity of the plot to the label's prototype (made of
        other plots: `nearest`), and the probability threshold with the best micro-F1 over those pairs."""
        from sklearn.linear_model import LogisticRegression

        label_vectors = prototypes(embedder.embed(list(labels), role="query"), nearest, PROTOTYPE_PLOTS)
        centred = centred_similarities(plots, label_vectors)
        # centred similarities span a few hundredths: the default regularisation would flatten the weight
        model = LogisticRegression(C=1e4).fit(centred.reshape(-1, 1), gold.reshape(-1))
        scale = cls(round(float(model.coef_[0, 0]), 4), round(float(model.intercept_[0]), 4), 0.5, PROTOTYPE_PLOTS)
        probabilities = scale.probabilities(centred)

        def micro_f1(threshold: float) -> float:
            chosen = probabilities >= threshold
            hits = float((chosen & (gold > 0)).sum())
            return 2 * hits / max(float(chosen.sum() + (gold > 0).sum()), 1.0)

        best = max(np.round(np.arange(0.05, 0.9, 0.025), 3), key=micro_f1)
        return cls(scale.weight, scale.bias, float(best), PROTOTYPE_PLOTS)

    def probabilities(self, centred: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.weight * centred + self.bias)))

    def to_part(self) -> dict:
        """What an index part's manifest records: `zero_shot` as the version before prototypes wrote it (so that
        version still loads the index, comparing with names), the prototypes' size beside it."""
        return {"zero_shot": {"weight": self.weight, "bias": self.bias, "threshold": self.threshold},
                "zero_shot_prototypes": self.prototype_plots}

    @classmethod
    def of_part(cls, part: dict) -> ZeroShotScale | None:
        """The scale an index part's manifest records (None for an index built before zero-shot labels)."""
        scale = part.get("zero_shot")
        return cls(**scale, prototype_plots=part.get("zero_shot_prototypes", 0)) if scale else None


def prototypes(label_vectors: np.ndarray, nearest: NearestPlots, plots: int) -> np.ndarray:
    """Each label as the normalised mean of the `plots` plots closest to it."""
    if not plots or not len(label_vectors):
        return label_vectors
    means = nearest(label_vectors, plots).mean(axis=1)
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def nearest_plots(vectors: np.ndarray) -> NearestPlots:
    """The plots closest to some vectors, among plots' vectors in memory (a build's)."""
    def nearest(queries: np.ndarray, k: int) -> np.ndarray:
        _, ids = faiss.knn(np.ascontiguousarray(queries, np.float32), vectors, min(k, len(vectors)),
                           metric=faiss.METRIC_INNER_PRODUCT)
        return vectors[ids]

    return nearest


def nearest_in(index: ReferenceIndex) -> NearestPlots:
    """The plots closest to some vectors, in an index part (only the vectors found are read back)."""
    def nearest(queries: np.ndarray, k: int) -> np.ndarray:
        _, ids = index.faiss.search(np.ascontiguousarray(queries, np.float32), min(k, len(index)))
        return np.stack([index.faiss.reconstruct_batch(row[row >= 0]) for row in ids])

    return nearest


def centred_similarities(texts: np.ndarray, labels: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Each text's similarity to each label, less its mean similarity to the background labels (default: the
    labels themselves): how much closer the text is to a label than to labels in general."""
    sims = texts @ labels.T
    base = sims if background is None else texts @ background.T
    return sims - base.mean(axis=1, keepdims=True)


class LabelScorer:
    def __init__(self, embedder: Embedder, vocabulary: Vocabulary, scale: ZeroShotScale | None,
                 nearest: NearestPlots | None = None):
        self.embedder, self.vocabulary, self.scale, self.nearest = embedder, vocabulary, scale, nearest
        self._vectors: LRUCache = LRUCache(maxsize=4096)  # label → its vector (role "query")
        self._prototypes: LRUCache = LRUCache(maxsize=4096)  # label → its prototype
        self._lock = threading.Lock()

    def distinct(self, labels: Sequence[str]) -> list[str]:
        """The labels once each, as first spelled: "Drama" and "drama", or "Sci-Fi" and "science fiction" (one
        label of the index), are one label."""
        first: dict[str, str] = {}
        for label in labels:
            first.setdefault(self.vocabulary.canonical(label) or label_key(label), label)
        return list(first.values())

    def unknown(self, labels: Sequence[str]) -> list[str]:
        """The labels the index has learned no example of (neither its own spelling nor a synonym)."""
        return [label for label in labels if self.vocabulary.canonical(label) not in self.vocabulary.labels]

    def score(self, text: str, index_scores: dict[str, float], threshold: float, labels: Sequence[str],
              llm_picks: list[str] | None) -> list[LabelScore]:
        """One score per requested label, in the request's order."""
        unknown = self.unknown(labels)
        zero_shot = (self._llm(unknown, llm_picks) if llm_picks is not None
                     else self._embedding(text, unknown, index_scores, threshold) if unknown else {})
        out = []
        for label in labels:
            if label in zero_shot:
                out.append(zero_shot[label])
            else:
                score = index_scores.get(self.vocabulary.canonical(label), 0.0)
                out.append(LabelScore(label, round(score, 4), "index", bool(score >= threshold)))
        return out

    def answer(self, text: str, index_scores: dict[str, float], threshold: float, labels: Sequence[str],
               llm_picks: list[str] | None, max_genres: int) -> tuple[list[LabelScore], list[str]]:
        """The requested labels scored, and those that pass, highest first (the answer's genres)."""
        scored = self.score(text, index_scores, threshold, labels, llm_picks)
        passing = sorted((s for s in scored if s.passes), key=lambda s: -s.score)
        return scored, [s.label for s in passing][:max_genres]

    @staticmethod
    def _llm(labels: list[str], picks: list[str]) -> dict[str, LabelScore]:
        rank = {label_key(label): i for i, label in enumerate(picks)}
        out = {}
        for label in labels:
            place = rank.get(label_key(label))
            score = 0.0 if place is None else round(max(0.5, LLM_PICK_SCORE - 0.1 * place), 4)
            out[label] = LabelScore(label, score, "llm", place is not None)
        return out

    def _embedding(self, text: str, labels: list[str], index_scores: dict[str, float],
                   threshold: float) -> dict[str, LabelScore]:
        """The zero-shot probability of each label, or the score of a label of the index it is a synonym of
        (which then passes as that label would: at the index's threshold)."""
        vector = self.embedder.embed([text], role="passage")
        wanted, known = self._embed(labels), self._embed(list(self.vocabulary.labels))
        direct = self.scale.probabilities(centred_similarities(
            vector, self._compared(labels, wanted), self._compared(list(self.vocabulary.labels), known)))[0] \
            if self.scale else np.zeros(len(labels))
        closeness = wanted @ known.T  # each requested label to each label the index knows
        floor = max(self.scale.threshold, RELATIVE_TO_BEST * float(direct.max())) if self.scale else np.inf
        out = {}
        for i, label in enumerate(labels):
            nearest = int(np.argmax(closeness[i]))
            via_known = index_scores.get(self.vocabulary.labels[nearest], 0.0) \
                if closeness[i, nearest] >= SYNONYM_SIMILARITY else 0.0
            passes = bool(via_known >= threshold or direct[i] >= floor)
            out[label] = LabelScore(label, round(float(max(direct[i], via_known)), 4), "embedding", passes)
        return out

    def _compared(self, labels: list[str], vectors: np.ndarray) -> np.ndarray:
        """What the description is compared with: the labels' prototypes, as the scale was learned with."""
        plots = self.scale.prototype_plots if self.scale and self.nearest else 0
        if not plots:
            return vectors
        return self._cached(self._prototypes, labels, lambda missing: prototypes(self._embed(missing), self.nearest,
                                                                                plots))

    def _embed(self, labels: list[str]) -> np.ndarray:
        return self._cached(self._vectors, labels, lambda missing: self.embedder.embed(missing, role="query"))

    def _cached(self, cache: LRUCache, labels: list[str], make) -> np.ndarray:
        """Each label's vector from `cache`, those it lacks made together by `make(labels)` and kept."""
        if not labels:
            return np.zeros((0, self.embedder.dim), np.float32)
        with self._lock:
            found = {label: cache[label] for label in labels if label in cache}
        missing = [label for label in dict.fromkeys(labels) if label not in found]
        if missing:
            found |= dict(zip(missing, make(missing)))
            with self._lock:
                for label in missing:
                    cache[label] = found[label]
        return np.stack([found[label] for label in labels])
