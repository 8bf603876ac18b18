"""How well a text matched the reference, as `high`, `medium` or `low`, with a one-line reason.

Two signals, both learned per index part at build time:
- whether the text reads like a film at all: a logistic regression on the text's embedding, real plots
  (the reference's validation split) against texts that describe no film (data/non_film_texts.txt:
  questions, recipes, news lines, code, messages). Below even odds the answer is `low`.
- how close the closest reference film is, against real plots: as close as the median validation plot
  or closer is `high`, else `medium`.
The closest similarity alone separates worse: it depends on the index's size and on the style of the
description (an IMDb one-liner sits lower than a TMDB overview), while the text's own embedding does not."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NON_FILM_TEXTS = Path(__file__).parent / "data" / "non_film_texts.txt"
HIGH_PERCENTILE = 50  # as close as a typical real plot, or closer


def non_film_texts() -> list[str]:
    lines = NON_FILM_TEXTS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class ConfidenceScale:
    high_from: float                 # closest-film similarity of the median real plot
    film_weights: tuple[float, ...]  # logistic regression: real plot (1) against text of no film (0)
    film_bias: float

    @classmethod
    def learn(cls, plots: np.ndarray, plots_closest: Sequence[float], others: np.ndarray) -> ConfidenceScale:
        """From real plots' query vectors and their closest-film similarities, and non-film texts' vectors."""
        from sklearn.linear_model import LogisticRegression

        x = np.vstack([plots, others])
        y = np.r_[np.ones(len(plots)), np.zeros(len(others))]
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, y)
        high = float(np.percentile(np.asarray(plots_closest, dtype=float), HIGH_PERCENTILE))
        return cls(round(high, 4), tuple(round(float(w), 6) for w in model.coef_[0]),
                   round(float(model.intercept_[0]), 6))

    def film_probability(self, vector: np.ndarray) -> float:
        return float(1 / (1 + np.exp(-(vector @ np.asarray(self.film_weights) + self.film_bias))))

    def assess(self, vector: np.ndarray, closest: float) -> tuple[str, str]:
        film = self.film_probability(vector)
        if film < 0.5:
            return "low", (f"this reads like no film (it reads as a film plot with probability {film:.2f}); "
                           f"its closest reference film is at similarity {closest:.2f}")
        if closest < self.high_from:
            return "medium", (f"reads like a film; its closest reference film ({closest:.2f}) is less close than "
                              f"for a typical plot ({self.high_from:.2f})")
        return "high", ("reads like a film and matches reference films as closely as a typical plot "
                        f"(closest {closest:.2f})")
