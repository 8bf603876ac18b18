"""Which language a text is in (lingua, whose models ship in the wheel), and which path serves it.

English descriptions go the English path (MiniLM, TF-IDF and the heads tuned for it); a description
confidently in another language goes the multilingual path (multilingual-e5 against the same English
reference plots). A text too short or too mixed to tell (a title, a name) stays on the English path."""
from __future__ import annotations

import threading
from dataclasses import dataclass

# lingua's confidence a language needs before the text is taken to be in it
CONFIDENT = 0.5
# lingua reads this much of a text: its time grows with the length, its answer does not change (measured
# on the German, French and English dev plots and 2,000 reference plots: the same language for every
# text from 240 characters on, 99.75% from 160)
DETECTION_CHARS = 300


@dataclass(frozen=True)
class Detection:
    language: str | None   # ISO 639-1, lowercase; None when no language is confident
    confidence: float

    @property
    def english(self) -> bool:
        return self.language in (None, "en")


class LanguageDetector:
    """The languages lingua knows but those the multilingual model does not read (`without`, ISO 639-1: it cannot
    serve a text better for telling them, and each costs every Latin-script text its time — 1.31 against 1.05 ms
    for 75 languages against 67 — and its model's memory), in lingua's low-accuracy mode: about a millisecond for a
    plot (its high-accuracy mode takes 1.3 GB). lingua loads a language's model when a text in its script first
    comes: ~50 MB of RSS for the Latin-script languages. Built on first use, or by warm_up() when the service
    starts."""

    def __init__(self, without: tuple[str, ...] = ()) -> None:
        self.without = without
        self._detector = None
        self._lock = threading.Lock()

    def _built(self):
        with self._lock:
            if self._detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

                left_out = [Language.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in self.without]
                self._detector = LanguageDetectorBuilder.from_all_languages_without(*left_out) \
                    .with_low_accuracy_mode().build()
        return self._detector

    def detect(self, text: str) -> Detection:
        return self._decided(self._built().compute_language_confidence_values(text[:DETECTION_CHARS]))

    def detect_many(self, texts: list[str]) -> list[Detection]:
        """Several texts on all cores (lingua's own threads, outside the GIL)."""
        if len(texts) < 2:
            return [self.detect(t) for t in texts]
        heads = [text[:DETECTION_CHARS] for text in texts]
        return [self._decided(v) for v in self._built().compute_language_confidence_values_in_parallel(heads)]

    @staticmethod
    def _decided(values) -> Detection:
        if not values or values[0].value < CONFIDENT:
            return Detection(None, round(values[0].value, 3) if values else 0.0)
        return Detection(values[0].language.iso_code_639_1.name.lower(), round(values[0].value, 3))

    def warm_up(self) -> None:
        self.detect("A young wizard goes to a school of magic.")

