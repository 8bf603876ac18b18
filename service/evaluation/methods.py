"""The classic methods the service is compared with, all scored as a (films × 18 genres) matrix."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from service.scoring.metrics import binarize
from service.store import ReferenceIndex
from service.training import tfidf_features, tfidf_logreg
from service.vote import as_matrix, decide, vote

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.025), 3)


CLASSIC = {
    "tfidf_nb": lambda: make_pipeline(tfidf_features(), OneVsRestClassifier(ComplementNB(alpha=0.3))),
    "tfidf_svm": lambda: make_pipeline(tfidf_features(), OneVsRestClassifier(LinearSVC(C=0.5))),
    "tfidf_logreg": tfidf_logreg,  # the same model the service blends in
}


def fit_classic(name: str, plots: Sequence[str], genres: Sequence[Sequence[str]], labels: Sequence[str]):
    return CLASSIC[name]().fit(list(plots), binarize(genres, labels))


def classic_scores(model, plots: Sequence[str]) -> np.ndarray:
    """Scores in 0..1: probabilities where the model has them, a logistic of SVM margins otherwise."""
    if hasattr(model, "predict_proba"):
        try:
            return model.predict_proba(list(plots))
        except AttributeError:
            pass
    return 1 / (1 + np.exp(-2 * model.decision_function(list(plots))))


def knn_scores(index: ReferenceIndex, vectors: np.ndarray, k: int, labels: Sequence[str]) -> np.ndarray:
    return as_matrix([vote(neighbours) for neighbours in index.search(vectors, k)], labels)


def predict(scores: np.ndarray, threshold: float, labels: Sequence[str], max_genres: int = 5) -> list[list[str]]:
    return [decide(dict(zip(labels, row.tolist())), threshold, max_genres) for row in scores]


def tune_threshold(scores: np.ndarray, gold: Sequence[Sequence[str]], labels: Sequence[str]) -> float:
    """The threshold with the best micro-F1 on validation data."""
    from service.scoring.metrics import score

    return max(THRESHOLDS, key=lambda t: score(gold, predict(scores, t, labels), labels)["micro_f1"]).item()
