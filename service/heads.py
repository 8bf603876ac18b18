"""Trained heads that blend with the neighbour vote, as the service runs them: TF-IDF features into
per-genre logistic regressions, and per-genre logistic regressions on the plot embeddings. They are
trained with scikit-learn at build time (training.py) and kept here as plain arrays, so a serving
process never imports scikit-learn: its import alone brings scipy, pandas and ~150 MB of RSS.

TextFeatures computes what scikit-learn's TfidfVectorizer.transform computes (tests/test_heads.py holds
them equal on the same texts); it is the only part of scikit-learn re-done here.

Measured on imdb_top_1000 (titles excluded), micro-F1: kNN vote 0.597, TF-IDF LR 0.614, blend as served
0.631 (see eval/report.md).
"""
from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from service.atomic import write_bytes
from service.store import IndexLoadError, ReferenceIndex


SparseRow = tuple[np.ndarray, np.ndarray]  # (column indices, values) of one row


def scorer_file(part: str) -> str:
    """The trained heads of an index part, in the index's build folder."""
    return f"scorer-{part}.npz"


@dataclass(frozen=True)
class Blend:
    vote: float
    tfidf: float
    embedding: float
    threshold: float
    validation_micro_f1: float = 0.0


@dataclass
class LinearHead:
    """One logistic regression per genre, stacked: (features × genres) weights and a bias per genre.
    One matrix product answers what asking 18 estimators one by one did in ~3 ms a request."""
    weights: np.ndarray
    biases: np.ndarray

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self._logistic(x @ self.weights)

    def sparse_probabilities(self, rows: Sequence[SparseRow]) -> np.ndarray:
        """The same for rows given as (columns, values): TF-IDF rows are a few hundred of ~10⁵ columns."""
        if not rows:
            return np.zeros((0, len(self.biases)))
        return self._logistic(np.stack([values @ self.weights[columns] for columns, values in rows]))

    def _logistic(self, products: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(products + self.biases)))


@dataclass
class TextFeatures:
    """TfidfVectorizer.transform: lowercased, tokens by `token_pattern`, stop words dropped, then n-grams
    of what is left, counted over the fitted vocabulary; sublinear tf × idf, L2-normalised."""
    vocabulary: dict[str, int]
    idf: np.ndarray
    stop_words: frozenset[str]
    ngram_range: tuple[int, int]
    token_pattern: str
    sublinear_tf: bool

    def __post_init__(self) -> None:
        self._tokens = re.compile(self.token_pattern)

    def transform(self, texts: Sequence[str]) -> list[SparseRow]:
        return [self._row(text) for text in texts]

    def _row(self, text: str) -> SparseRow:
        counts = Counter(self.vocabulary[term] for term in self._terms(text) if term in self.vocabulary)
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (np.log(tf) + 1 if self.sublinear_tf else tf) * self.idf[columns]
        return columns, values / np.sqrt(values @ values) if len(values) else values

    def _terms(self, text: str) -> list[str]:
        words = [w for w in self._tokens.findall(text.lower()) if w not in self.stop_words]
        low, high = self.ngram_range
        return [" ".join(words[i:i + n]) for n in range(low, high + 1) for i in range(len(words) - n + 1)]


@dataclass
class Heads:
    embedding: LinearHead
    text_features: TextFeatures | None = None
    text: LinearHead | None = None

    def scores(self, texts: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(TF-IDF head, embedding head) probabilities, films × labels; zeros for a part without a text head."""
        embedding = self.embedding.probabilities(vectors)
        if self.text is None:
            return np.zeros_like(embedding), embedding
        return self.text.sparse_probabilities(self.text_features.transform(texts)), embedding


@dataclass
class BlendedScorer:
    heads: Heads
    blend: Blend
    labels: tuple[str, ...]  # the heads' columns: the index vocabulary's learned labels

    def blend_scores(self, texts: Sequence[str], vectors: np.ndarray,
                     vote_scores: Sequence[dict[str, float]]) -> list[dict[str, float]]:
        tfidf, embedding = self.heads.scores(texts, vectors)
        b = self.blend
        rows = []
        for votes, t_row, e_row in zip(vote_scores, tfidf, embedding):
            mixed = {g: b.vote * votes.get(g, 0.0) + b.tfidf * t + b.embedding * e
                     for g, t, e in zip(self.labels, t_row.tolist(), e_row.tolist())}
            rows.append(dict(sorted(mixed.items(), key=lambda item: -item[1])))
        return rows

    def save(self, path: Path) -> None:
        """Arrays and a JSON header in one .npz, written atomically."""
        heads, features = self.heads, self.heads.text_features
        meta = {"blend": asdict(self.blend), "genres": list(self.labels)}
        arrays = {"embedding_weights": heads.embedding.weights, "embedding_biases": heads.embedding.biases}
        if features is not None:
            terms = sorted(features.vocabulary, key=features.vocabulary.__getitem__)
            meta["text"] = {"stop_words": sorted(features.stop_words), "ngram_range": list(features.ngram_range),
                            "token_pattern": features.token_pattern, "sublinear_tf": features.sublinear_tf}
            arrays |= {"terms": _utf8("\n".join(terms)), "idf": features.idf,
                       "text_weights": heads.text.weights, "text_biases": heads.text.biases}
        buffer = io.BytesIO()
        np.savez(buffer, meta=_utf8(json.dumps(meta, ensure_ascii=False)), **arrays)
        write_bytes(path, buffer.getvalue())

    @staticmethod
    def load(path: Path) -> BlendedScorer:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes().decode("utf-8"))
            heads = Heads(LinearHead(stored["embedding_weights"], stored["embedding_biases"]))
            if "text" in meta:
                text = meta["text"]
                terms = stored["terms"].tobytes().decode("utf-8").split("\n")
                heads.text_features = TextFeatures({t: i for i, t in enumerate(terms)}, stored["idf"],
                                                   frozenset(text["stop_words"]), tuple(text["ngram_range"]),
                                                   text["token_pattern"], text["sublinear_tf"])
                heads.text = LinearHead(stored["text_weights"], stored["text_biases"])
        return BlendedScorer(heads, Blend(**meta["blend"]), tuple(meta["genres"]))


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def load_scorer(index: ReferenceIndex, part: str = "english") -> BlendedScorer | None:
    """The heads and blend trained with this index part; None for a build that has none (a corpus too small
    to train them). Raises IndexLoadError when the manifest records a blend whose file is missing or damaged:
    serving the bare vote with the default threshold in its place would silently answer worse."""
    recorded = (index.manifest.get("parts", {}).get(part) or {}).get("blend")
    path = index.build_dir / scorer_file(part) if index.build_dir else None
    if path is None or (not path.exists() and not recorded):
        return None
    try:
        scorer = BlendedScorer.load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged archive raises almost anything
        problem = "missing" if not path.exists() else f"damaged ({type(exc).__name__})"
        raise IndexLoadError(f"the trained heads in {path} are {problem}: run `make build-index`") from exc
    if scorer.labels != index.vocabulary.labels:
        raise IndexLoadError(f"the trained heads in {path} were trained for other labels than the index's: "
                             "run `make build-index`")
    return scorer
