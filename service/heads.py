"""Trained heads that blend with the neighbour vote: TF-IDF + logistic regression on the plot text, and
logistic regression on the plot embeddings. Their blend weights and the decision threshold are tuned on
a validation split carved from the reference itself, per index part: the multilingual part has no TF-IDF
head (its words are English, the descriptions it serves are not).

Measured on imdb_top_1000 (titles excluded), micro-F1: kNN vote 0.597, TF-IDF LR 0.614, blend as served
0.631 (see eval/report.md).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from service.corpus import Film
from service.evaluation.metrics import binarize, micro_f1
from service.evaluation.split import validation_split
from service.genres import SHARED_GENRES
from service.store import IndexLoadError, ReferenceIndex
from service.vote import DEFAULT_THRESHOLD, as_matrix, decide, vote

def scorer_file(part: str) -> str:
    """The trained heads of an index part, in the index's build folder."""
    return f"scorer-{part}.joblib"



WEIGHT_STEPS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)
MIN_FILMS = 100  # below this, a validation split says nothing: the vote answers alone
THRESHOLDS = tuple(np.round(np.arange(0.1, 0.6, 0.025), 3).tolist())


@dataclass(frozen=True)
class Blend:
    vote: float
    tfidf: float
    embedding: float
    threshold: float
    validation_micro_f1: float = 0.0


def tfidf_features() -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.5, sublinear_tf=True, stop_words="english")


def tfidf_logreg():
    return make_pipeline(tfidf_features(), OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=1000)))


class Heads:
    def __init__(self, films: Sequence[Film], vectors: np.ndarray, text_head: bool = True):
        labels = binarize([f.genres for f in films])
        self.tfidf = tfidf_logreg().fit([f.plot for f in films], labels) if text_head else None
        self.embedding = OneVsRestClassifier(LogisticRegression(C=2.0, max_iter=2000)).fit(vectors, labels)

    def scores(self, texts: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embedding = self._probabilities("embedding", self.embedding, vectors)
        if self.tfidf is None:
            return np.zeros_like(embedding), embedding
        vectorizer, classifier = self.tfidf.steps[0][1], self.tfidf.steps[-1][1]
        return self._probabilities("tfidf", classifier, vectorizer.transform(list(texts))), embedding

    def _probabilities(self, name: str, one_vs_rest: OneVsRestClassifier, x) -> np.ndarray:
        """What `predict_proba` answers, from the estimators' coefficients stacked once into one matrix:
        asking the 18 estimators one by one cost ~3 ms a request (profiled in `make bench`)."""
        stacked = self.__dict__.setdefault("_stacked", {})
        if name not in stacked:
            estimators = one_vs_rest.estimators_
            if not all(isinstance(e, LogisticRegression) for e in estimators):  # a genre no film had: a constant
                return one_vs_rest.predict_proba(x)
            stacked[name] = (np.ascontiguousarray(np.vstack([e.coef_[0] for e in estimators]).T),
                             np.array([e.intercept_[0] for e in estimators]))
        weights, biases = stacked[name]
        return 1 / (1 + np.exp(-(x @ weights + biases)))


@dataclass
class BlendedScorer:
    heads: Heads
    blend: Blend

    def blend_scores(self, texts: Sequence[str], vectors: np.ndarray,
                     vote_scores: Sequence[dict[str, float]]) -> list[dict[str, float]]:
        tfidf, embedding = self.heads.scores(texts, vectors)
        b = self.blend
        rows = []
        for votes, t_row, e_row in zip(vote_scores, tfidf, embedding):
            mixed = {g: b.vote * votes.get(g, 0.0) + b.tfidf * t + b.embedding * e
                     for g, t, e in zip(SHARED_GENRES, t_row.tolist(), e_row.tolist())}
            rows.append(dict(sorted(mixed.items(), key=lambda item: -item[1])))
        return rows

    def save(self, path: Path) -> None:
        joblib.dump(self, path)

    @staticmethod
    def load(path: Path) -> BlendedScorer:
        return joblib.load(path)


def tune_blend(films: Sequence[Film], vectors: np.ndarray, k: int, max_genres: int, text_head: bool = True) -> Blend:
    """Weights and threshold with the best micro-F1 on a validation split, the heads and the vote
    trained and indexed on the rest."""
    train, val = validation_split(len(films))
    train_films = [films[i] for i in train]
    heads = Heads(train_films, vectors[train], text_head)
    val_films = [films[i] for i in val]
    votes = [vote(n) for n in ReferenceIndex(train_films, vectors[train]).search(vectors[val], k)]
    components = [as_matrix(votes),
                  *heads.scores([f.plot for f in val_films], vectors[val])]
    gold = [f.genres for f in val_films]
    best = Blend(1.0, 0.0, 0.0, DEFAULT_THRESHOLD)
    for w_vote, w_tfidf in itertools.product(WEIGHT_STEPS, WEIGHT_STEPS if text_head else (0.0,)):
        w_emb = round(1 - w_vote - w_tfidf, 3)
        if w_emb < 0:
            continue
        mixed = w_vote * components[0] + w_tfidf * components[1] + w_emb * components[2]
        for threshold in THRESHOLDS:
            predicted = [decide(dict(zip(SHARED_GENRES, row.tolist())), threshold, max_genres) for row in mixed]
            micro = micro_f1(gold, predicted)
            if micro > best.validation_micro_f1:
                best = Blend(w_vote, w_tfidf, w_emb, threshold, round(micro, 4))
    return best


def load_scorer(index: ReferenceIndex, part: str = "english") -> BlendedScorer | None:
    """The heads and blend trained with this index part, if its build has them. Raises IndexLoadError
    when the file is damaged."""
    path = index.build_dir / scorer_file(part) if index.build_dir else None
    if path is None or not path.exists():
        return None
    try:
        return BlendedScorer.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling a damaged file raises almost anything
        raise IndexLoadError(f"the trained heads in {path} are damaged ({type(exc).__name__}): "
                             "run `make build-index`") from exc


def train_scorer(films: Sequence[Film], vectors: np.ndarray, k: int, max_genres: int,
                 text_head: bool = True) -> BlendedScorer | None:
    if len(films) < MIN_FILMS:
        return None
    blend = tune_blend(films, vectors, k, max_genres, text_head)
    return BlendedScorer(Heads(films, vectors, text_head), blend)
