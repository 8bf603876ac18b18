"""The trained heads answer what scikit-learn's own predict_proba answers, faster."""
import numpy as np

from service.heads import load_scorer

from .conftest import tmdb_rows


def test_stacked_heads_give_scikit_learns_probabilities(small_index, embedder):
    heads = load_scorer(small_index).heads
    texts = [row["plot"] for row in tmdb_rows(300, 30)]
    vectors = embedder.embed(texts)
    tfidf, embedding = heads.scores(texts, vectors)
    assert np.allclose(tfidf, heads.tfidf.predict_proba(texts), atol=1e-6)
    assert np.allclose(embedding, heads.embedding.predict_proba(vectors), atol=1e-6)
