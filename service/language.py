"""Which language a text is in (lingua, whose models ship in the wheel), and which path serves it.

English descriptions go the English path (MiniLM, TF-IDF and the heads tuned for it); a description
confidently in another language goes the multilingual path (multilingual-e5 against the same English
reference plots). A text too short or too mixed to tell (a title, a name) stays on the English path."""
from __future__ import annotations

import threading
from dataclasses import dataclass

# lingua's confidence a language needs before the text is taken to be in it
CONFIDENT = 0.5


@dataclass(frozen=True)
class Detection:
    language: str | None   # ISO 639-1, lowercase; None when no language is confident
    confidence: float

    @property
    def english(self) -> bool:
        return self.language in (None, "en")


class LanguageDetector:
    """All 75 languages lingua knows, in its low-accuracy mode: about 130 MB and under a millisecond
    for a sentence (its high-accuracy mode takes 1.3 GB). Built on first use."""

    def __init__(self) -> None:
        self._detector = None
        self._lock = threading.Lock()

    def _built(self):
        with self._lock:
            if self._detector is None:
                from lingua import LanguageDetectorBuilder

                self._detector = (LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode()
                                  .with_preloaded_language_models().build())
        return self._detector

    def detect(self, text: str) -> Detection:
        values = self._built().compute_language_confidence_values(text)
        if not values or values[0].value < CONFIDENT:
            return Detection(None, round(values[0].value, 3) if values else 0.0)
        return Detection(values[0].language.iso_code_639_1.name.lower(), round(values[0].value, 3))

    def warm_up(self) -> None:
        self._built()
