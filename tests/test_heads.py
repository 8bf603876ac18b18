"""The heads the service runs as plain arrays answer what scikit-learn answers, without importing it."""
import os
import subprocess
import sys

import numpy as np
import pytest

from service.scoring.metrics import binarize
from service.heads import BlendedScorer, load_scorer
from service.training import linear_head, text_features, tfidf_logreg

from .conftest import tmdb_rows

ODD_TEXTS = ["", "the and of it", "Ünïcödé ÉTÉ: l'été à Paris, naïve café", "東京の若い魔法使いが学校に通う",
             "محقق يطارد قاتلًا في القاهرة", "🎬🔥 a heist 🔥 heist HEIST", "x" * 3000, "dark lord dark lord dark"]


@pytest.fixture(scope="module")
def fitted():
    rows = tmdb_rows(0, 400)
    return tfidf_logreg().fit([r["plot"] for r in rows], binarize([r["genres"].split(", ") for r in rows]))


def test_text_features_are_tfidf_vectorizers_numbers(fitted):
    vectorizer = fitted.steps[0][1]
    features = text_features(vectorizer)
    texts = [r["plot"] for r in tmdb_rows(400, 60)] + ODD_TEXTS
    expected = vectorizer.transform(texts).toarray()
    got = np.zeros_like(expected)
    for row, (columns, values) in zip(got, features.transform(texts)):
        row[columns] = values
    assert np.abs(expected).sum() > 100  # the texts do hit the vocabulary
    assert np.allclose(got, expected, atol=1e-12)


def test_the_text_head_gives_predict_proba(fitted):
    head = linear_head(fitted.steps[-1][1], 18)
    features = text_features(fitted.steps[0][1])
    texts = [r["plot"] for r in tmdb_rows(400, 60)] + ODD_TEXTS
    assert np.allclose(head.sparse_probabilities(features.transform(texts)), fitted.predict_proba(texts), atol=1e-9)


def test_the_embedding_head_gives_predict_proba(embedder):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    rows = tmdb_rows(0, 300)
    vectors = embedder.embed([r["plot"] for r in rows])
    labels = binarize([r["genres"].split(", ") for r in rows])
    fitted = OneVsRestClassifier(LogisticRegression(C=2.0, max_iter=2000)).fit(vectors, labels)
    probe = embedder.embed([r["plot"] for r in tmdb_rows(300, 40)] + ODD_TEXTS)
    assert np.allclose(linear_head(fitted, 18).probabilities(probe), fitted.predict_proba(probe), atol=1e-9)


def test_the_served_heads_survive_saving_and_give_the_same_scores(small_index, embedder, tmp_path):
    scorer = load_scorer(small_index)
    texts = [row["plot"] for row in tmdb_rows(300, 30)] + ODD_TEXTS
    vectors = embedder.embed(texts)
    scorer.save(tmp_path / "scorer.npz")
    again = BlendedScorer.load(tmp_path / "scorer.npz")
    assert again.blend == scorer.blend
    for before, after in zip(scorer.heads.scores(texts, vectors), again.heads.scores(texts, vectors)):
        assert np.array_equal(before, after) and before.shape == (len(texts), 18)


def test_a_serving_process_imports_no_scikit_learn(small_index_dir):
    code = ("import sys; from service.settings import Settings; from service.loading import load_classifier; "
            "import service.api.app; c = load_classifier(Settings()); c.classify('A wizard fights a dark lord.', "
            "use_llm=False); print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"MOVIEGENRE_INDEX_DIR": str(small_index_dir), "LLM_BACKEND": "none"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
