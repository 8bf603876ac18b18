"""Multi-label metrics over a set of labels: by default the 18 genres both TMDB and IMDb use (IMDb labels are
judged on what the reference can know), else an index's own vocabulary."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.genres import SHARED_GENRES


def binarize(label_sets: Sequence[Sequence[str]], genres: Sequence[str] = SHARED_GENRES) -> np.ndarray:
    position = {g: i for i, g in enumerate(genres)}
    matrix = np.zeros((len(label_sets), len(genres)), dtype=np.int8)
    for row, labels in enumerate(label_sets):
        for label in labels:
            if label in position:
                matrix[row, position[label]] = 1
    return matrix


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
          labels: Sequence[str] = SHARED_GENRES) -> dict:
    """micro/macro/samples F1, micro precision and recall, per-genre F1, mean labels predicted vs gold.
    Macro-F1 averages over the genres present in the gold labels (a genre no film has cannot be scored)."""
    from sklearn.metrics import f1_score, precision_score, recall_score  # not at import: the service needs none

    y_true, y_pred = binarize(gold, labels), binarize(predicted, labels)
    present = [i for i in range(len(labels)) if y_true[:, i].any()]
    options = {"zero_division": 0}
    per_genre = f1_score(y_true, y_pred, average=None, **options)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", **options)),
        "macro_f1": float(f1_score(y_true[:, present], y_pred[:, present], average="macro", **options)),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", **options)),
        "precision": float(precision_score(y_true, y_pred, average="micro", **options)),
        "recall": float(recall_score(y_true, y_pred, average="micro", **options)),
        "per_genre_f1": {labels[i]: float(per_genre[i]) for i in present},
        "mean_predicted": float(y_pred.sum(axis=1).mean()) if len(y_pred) else 0.0,
        "mean_gold": float(y_true.sum(axis=1).mean()) if len(y_true) else 0.0,
        "films": len(gold),
    }


def film_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                labels: Sequence[str] = SHARED_GENRES) -> np.ndarray:
    """Per film: (true positives, false positives, false negatives) on the shared genres. Micro-F1 of any
    subset or resample of the films is micro_f1_of() of their rows."""
    y_true, y_pred = binarize(gold, labels).astype(bool), binarize(predicted, labels).astype(bool)
    return np.stack([(y_true & y_pred).sum(axis=1), (~y_true & y_pred).sum(axis=1),
                     (y_true & ~y_pred).sum(axis=1)], axis=1).astype(float).reshape(-1, 3)


def micro_f1_of(counts: np.ndarray) -> float:
    tp, fp, fn = counts.sum(axis=0)
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def micro_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
             labels: Sequence[str] = SHARED_GENRES) -> float:
    """score()'s micro-F1 alone, without sklearn's checks: for searches that compute it thousands of times."""
    return micro_f1_of(film_counts(gold, predicted, labels))


def ranking(gold: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]]) -> dict:
    """How high the true labels come when every label is ranked by its score, most likely first: the mean
    reciprocal rank of the first true label (MRR), how often it is first, and the true labels' mean rank."""
    firsts, ranks = [], []
    for truth, order in zip(gold, ranked):
        position = {label: i + 1 for i, label in enumerate(order)}
        true_ranks = [position.get(label, len(order) + 1) for label in truth]
        if true_ranks:
            firsts.append(min(true_ranks))
            ranks.extend(true_ranks)
    first = np.array(firsts, dtype=float)
    return {"mrr": round(float(np.mean(1 / first)), 4), "first_is_true": round(float(np.mean(first == 1)), 4),
            "mean_true_rank": round(float(np.mean(ranks)), 2),
            "ranked_labels": max((len(r) for r in ranked), default=0)}
