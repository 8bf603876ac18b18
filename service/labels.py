"""Scoring the labels a request brings (`labels` on /classify): a label the index knows is scored as always;
one it does not know is answered zero-shot, by the LLM where one answered (its schema built from the
request's labels), and otherwise by the embedding.

The embedding's zero-shot score: how much closer the description is to the label than to the index's own
labels on average (the centred similarity), turned into a probability by a logistic regression learned at
build time on the index's own labels as if they were unknown (ZeroShotScale: validation plots against the
names of their labels). A label that is all but a synonym of a label the index knows ("Krimi" and "Crime"
for the multilingual model) also takes that label's score: the reference films carrying it are the examples."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from service.embedding import Embedder
from service.genres import Vocabulary, label_key

# label to label (e5): synonyms measured 0.918-0.952 ("Komödie"/"Comedy", "Krimi"/"Crime"), other pairs up to 0.891
SYNONYM_SIMILARITY = 0.91
LLM_PICK_SCORE = 0.9     # the LLM's first pick; each later pick 0.1 lower
CALIBRATION_PLOTS = 400


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

    @classmethod
    def learn(cls, embedder: Embedder, plots: np.ndarray, gold: np.ndarray, labels: Sequence[str]) -> ZeroShotScale:
        """From plots' vectors and which of `labels` each carries (a 0/1 matrix): the logistic regression of
        "the plot carries the label" on the centred similarity of the plot to the label's name, and the
        probability threshold with the best micro-F1 over those pairs."""
        from sklearn.linear_model import LogisticRegression

        centred = centred_similarities(plots, embedder.embed(list(labels), role="query"))
        # centred similarities span a few hundredths: the default regularisation would flatten the weight
        model = LogisticRegression(C=1e4).fit(centred.reshape(-1, 1), gold.reshape(-1))
        scale = cls(round(float(model.coef_[0, 0]), 4), round(float(model.intercept_[0]), 4), 0.5)
        probabilities = scale.probabilities(centred)

        def micro_f1(threshold: float) -> float:
            chosen = probabilities >= threshold
            hits = float((chosen & (gold > 0)).sum())
            return 2 * hits / max(float(chosen.sum() + (gold > 0).sum()), 1.0)

        best = max(np.round(np.arange(0.05, 0.9, 0.025), 3), key=micro_f1)
        return cls(scale.weight, scale.bias, float(best))

    def probabilities(self, centred: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.weight * centred + self.bias)))


def centred_similarities(texts: np.ndarray, labels: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Each text's similarity to each label, less its mean similarity to the background labels (default: the
    labels themselves): how much closer the text is to a label than to labels in general."""
    sims = texts @ labels.T
    base = sims if background is None else texts @ background.T
    return sims - base.mean(axis=1, keepdims=True)


class LabelScorer:
    def __init__(self, embedder: Embedder, vocabulary: Vocabulary, scale: ZeroShotScale | None):
        self.embedder, self.vocabulary, self.scale = embedder, vocabulary, scale
        self._vectors: LRUCache = LRUCache(maxsize=4096)  # label → its vector (role "query")
        self._lock = threading.Lock()

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
        direct = self.scale.probabilities(centred_similarities(vector, wanted, known))[0] if self.scale else \
            np.zeros(len(labels))
        closeness = wanted @ known.T  # each requested label to each label the index knows
        out = {}
        for i, label in enumerate(labels):
            nearest = int(np.argmax(closeness[i]))
            via_known = index_scores.get(self.vocabulary.labels[nearest], 0.0) \
                if closeness[i, nearest] >= SYNONYM_SIMILARITY else 0.0
            passes = bool(via_known >= threshold or (self.scale is not None and direct[i] >= self.scale.threshold))
            out[label] = LabelScore(label, round(float(max(direct[i], via_known)), 4), "embedding", passes)
        return out

    def _embed(self, labels: list[str]) -> np.ndarray:
        with self._lock:
            missing = [label for label in labels if label not in self._vectors]
        if missing:
            for label, vector in zip(missing, self.embedder.embed(missing, role="query")):
                with self._lock:
                    self._vectors[label] = vector
        with self._lock:
            return np.stack([self._vectors[label] for label in labels]) if labels else \
                np.zeros((0, self.embedder.dim), np.float32)
