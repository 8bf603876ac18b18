"""Training the heads (heads.py) with scikit-learn, at build and evaluation time only: TF-IDF + logistic
regression on the plot text and logistic regression on the embeddings, one per genre, then the blend
weights and threshold tuned on a validation split carved from the reference itself, per index part. The
multilingual part has no TF-IDF head (its words are English, the descriptions it serves are not).

The fitted estimators are turned into the plain arrays the service runs (heads.py)."""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from service.corpus import Film
from service.scoring.metrics import binarize, micro_f1
from service.scoring.splits import validation_split
from service.heads import Blend, BlendedScorer, Heads, LinearHead, TextFeatures
from service.store import ReferenceIndex
from service.vote import DEFAULT_THRESHOLD, as_matrix, decide, vote

WEIGHT_STEPS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)
# the 18 genres' regressions train independently, one process per core: 10.2 → ~5 s for the TF-IDF head
# and 5.1 → 2.6 s for the embedding head on 15.9k films and 2 cores; a fresh machine waits for them
TRAINING_JOBS = -1
MIN_FILMS = 100  # below this, a validation split says nothing: the vote answers alone
THRESHOLDS = tuple(np.round(np.arange(0.1, 0.6, 0.025), 3).tolist())


def tfidf_features() -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.5, sublinear_tf=True, stop_words="english")


def tfidf_logreg():
    return make_pipeline(tfidf_features(),
                         OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=1000), n_jobs=TRAINING_JOBS))


def fit_heads(films: Sequence[Film], vectors: np.ndarray, labels: Sequence[str], text_head: bool = True) -> Heads:
    gold = binarize([f.genres for f in films], labels)
    embedding = OneVsRestClassifier(LogisticRegression(C=2.0, max_iter=2000), n_jobs=TRAINING_JOBS).fit(vectors, gold)
    heads = Heads(linear_head(embedding, len(labels)))
    if text_head:
        pipeline = tfidf_logreg().fit([f.plot for f in films], gold)
        heads.text_features = text_features(pipeline.steps[0][1])
        heads.text = linear_head(pipeline.steps[-1][1], len(labels))
    return heads


def linear_head(one_vs_rest: OneVsRestClassifier, labels: int) -> LinearHead:
    """The per-label estimators' coefficients stacked; a label no training film had is a constant 0."""
    columns = next(e.coef_.shape[1] for e in one_vs_rest.estimators_ if hasattr(e, "coef_"))
    weights, biases = np.zeros((columns, labels)), np.full(labels, -np.inf)
    for genre, estimator in enumerate(one_vs_rest.estimators_):
        if isinstance(estimator, LogisticRegression):
            weights[:, genre], biases[genre] = estimator.coef_[0], estimator.intercept_[0]
        elif estimator.predict_proba(np.zeros((1, columns)))[0, 1] > 0.5:  # a constant "always"
            biases[genre] = np.inf
    return LinearHead(np.ascontiguousarray(weights), biases)


def text_features(vectorizer: TfidfVectorizer) -> TextFeatures:
    stop_words = vectorizer.get_stop_words() or frozenset()
    return TextFeatures({term: int(i) for term, i in vectorizer.vocabulary_.items()}, vectorizer.idf_.copy(),
                        frozenset(stop_words), tuple(vectorizer.ngram_range), vectorizer.token_pattern,
                        vectorizer.sublinear_tf)


def tune_blend(films: Sequence[Film], vectors: np.ndarray, k: int, max_genres: int, labels: Sequence[str],
               text_head: bool = True, temperature: float | None = None) -> Blend:
    """Weights and threshold with the best micro-F1 on a validation split, the heads and the vote
    trained and indexed on the rest."""
    train, val = validation_split(len(films))
    train_films = [films[i] for i in train]
    heads = fit_heads(train_films, vectors[train], labels, text_head)
    val_films = [films[i] for i in val]
    votes = [vote(n, temperature) for n in ReferenceIndex(train_films, vectors[train]).search(vectors[val], k)]
    components = [as_matrix(votes, labels), *heads.scores([f.plot for f in val_films], vectors[val])]
    gold = [f.genres for f in val_films]
    best = Blend(1.0, 0.0, 0.0, DEFAULT_THRESHOLD)
    for w_vote, w_tfidf in itertools.product(WEIGHT_STEPS, WEIGHT_STEPS if text_head else (0.0,)):
        w_emb = round(1 - w_vote - w_tfidf, 3)
        if w_emb < 0:
            continue
        mixed = w_vote * components[0] + w_tfidf * components[1] + w_emb * components[2]
        for threshold in THRESHOLDS:
            predicted = [decide(dict(zip(labels, row.tolist())), threshold, max_genres) for row in mixed]
            micro = micro_f1(gold, predicted, labels)
            if micro > best.validation_micro_f1:
                best = Blend(w_vote, w_tfidf, w_emb, threshold, round(micro, 4))
    return best


def train_scorer(films: Sequence[Film], vectors: np.ndarray, k: int, max_genres: int, labels: Sequence[str],
                 text_head: bool = True, temperature: float | None = None) -> BlendedScorer | None:
    """The heads over the vocabulary's learned `labels`, and their blend with the vote (at the part's
    `temperature`) tuned on a validation split."""
    if len(films) < MIN_FILMS:
        return None
    blend = tune_blend(films, vectors, k, max_genres, labels, text_head, temperature)
    return BlendedScorer(fit_heads(films, vectors, labels, text_head), blend, tuple(labels))
