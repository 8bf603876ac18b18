"""What `make eval` reports on, and keeping every tuning and calibration step away from it.

The evaluation sets: the evaluation file (IMDb's top 1,000 by default) whole, the evaluation half of each multilingual
dev file (scoring.splits.halves), and the sequel descriptions of eval/sequels.csv. A film a tuning or calibration
step would read (a description of dev-eval/n_movies.csv, a film of a dev file's calibration half, a plot of the
reference's validation split) is dropped when it is one of them: by identity (films.TitleIndex: a title in common and
years that agree, directly or through a reference film both name, so an other title of the reference joins them), by
its very plot text, or by a plot at least exclusion.NEAR_DUPLICATE close in any index part. Each step records what it
dropped from each of its sets, with a fingerprint of each evaluation set it dropped, and `make eval` prints it.
"""
from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.corpus import Film, load_corpus, parse_year, plot_key
from service.evaluation.exclusion import REASONS, same_films
from service.films import film_key
from service.scoring.splits import halves
from service.settings import PROJECT_ROOT, Settings

EVALUATION_FILE = "imdb_top_1000.csv"
# new English descriptions of sequels the reference holds (see the file), wherever the command runs from
SEQUELS = PROJECT_ROOT / "eval" / "sequels.csv"
Embed = Callable[[str, Sequence[str]], np.ndarray]  # (index part, texts) → their vectors in that part


def multilingual_files(settings: Settings) -> dict[str, Path]:
    """The multilingual dev files by language (the file name's prefix)."""
    folder = settings.index.dev_eval() / "multilingual"
    return {path.stem.split("_")[0]: path for path in sorted(folder.glob("*.csv"))}


def read_sequels(path: Path) -> list[Film]:
    """The sequel descriptions (title, year, plot): films the reference holds, described in new words."""
    with path.open(encoding="utf-8", newline="") as f:
        return [Film(r["title"], parse_year(r["year"]), r["plot"], (), "sequels") for r in csv.DictReader(f)]


def evaluation_sets(settings: Settings, data: Path | None = None, languages: dict[str, Path] | None = None,
                    sequels: Path | None = SEQUELS) -> dict[str, list[Film]]:
    """Every set of films `make eval` reports on, by name: the evaluation file, each multilingual file's evaluation
    half, the sequels (when the file is there)."""
    data = data or settings.index.dev_eval() / EVALUATION_FILE
    languages = multilingual_files(settings) if languages is None else languages
    sets = {data.name: load_corpus(data).films}
    sets |= {f"{path.name} (evaluation half)": halves(load_corpus(path).films)[1] for path in languages.values()}
    if sequels is not None and sequels.exists():
        sets[sequels.name] = read_sequels(sequels)
    return sets


def fingerprint(films: Sequence[Film]) -> str:
    """Which films a set holds (their titles, years and plots), in 16 hex digits."""
    keys = sorted(f"{film_key(f.title, f.year)}|{plot_key(f.plot)}" for f in films)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def described(sets: dict[str, list[Film]]) -> dict[str, dict]:
    """Each evaluation set's size and fingerprint, as a fit records what it dropped."""
    return {name: {"films": len(films), "fingerprint": fingerprint(films)} for name, films in sets.items()}


def dropped_all(stored: dict, sets: dict[str, list[Film]]) -> bool:
    """Whether a fit's record (HeldOut.record) dropped every one of these evaluation sets."""
    kept = {d.get("fingerprint") for d in stored.get("evaluation_sets", {}).values() if isinstance(d, dict)}
    return all(fingerprint(films) in kept for films in sets.values())


@dataclass(frozen=True)
class Dropped:
    """What a calibration set lost to the evaluation sets, by the first reason each film matched."""
    films: int
    by_title: int
    by_plot_text: int
    by_plot_similarity: int

    @property
    def total(self) -> int:
        return self.by_title + self.by_plot_text + self.by_plot_similarity

    def counts(self) -> dict[str, int]:
        return {"films": self.films, "dropped": self.total, "by_title": self.by_title,
                "by_plot_text": self.by_plot_text, "by_plot_similarity": self.by_plot_similarity}


class HeldOut:
    """The evaluation sets' films, and which films of a calibration set are one of them (`keep` drops those)."""

    def __init__(self, sets: dict[str, list[Film]], reference: Sequence[Film], embed: Embed, parts: Sequence[str]):
        self.sets = sets
        self.films = [film for films in sets.values() for film in films]
        self._reference = reference
        self._embed = embed
        self._vectors = {part: embed(part, [film.plot for film in self.films]) for part in parts}
        self.dropped: dict[str, Dropped] = {}

    def keep(self, name: str, films: Sequence[Film]) -> list[Film]:
        """The films that are none of the evaluation films (exclusion.same_films, through the reference's titles
        too); what was dropped is recorded under `name`."""
        vectors = {part: (self._embed(part, [film.plot for film in films]), theirs)
                   for part, theirs in self._vectors.items()} if films else {}
        reasons = same_films(films, self.films, vectors, via=self._reference)
        self.dropped[name] = Dropped(len(films), *(reasons.count(reason) for reason in REASONS))
        return [film for film, reason in zip(films, reasons) if reason is None]

    def record(self) -> dict:
        """What is stored beside a fit: the evaluation sets' sizes and fingerprint, and what each set dropped."""
        return {"evaluation_sets": described(self.sets),
                "dropped": {name: dropped.counts() for name, dropped in self.dropped.items()}}
