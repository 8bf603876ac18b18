"""The vocabulary an index answers with, as data: its labels, the labels only an LLM names, and the synonyms
that map other sources' labels onto them. The index carries it (manifest.json) to everything that reads
labels: the vote, the heads and their threshold, the prompt and its JSON schema, the API, the page, the
evaluation.

The default is the genres both TMDB and IMDb use, in IMDb spelling; an index may instead be built with the
labels its corpus carries (`--vocabulary corpus`) or a vocabulary file (`--vocabulary FILE`: one label a
line, optionally with the source labels it stands for, `Krimi: Crime, Thriller`)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The 18 genres both TMDB and IMDb use, in IMDb spelling. The reference corpus labels only these.
SHARED_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
    "Fantasy", "History", "Horror", "Music", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
# IMDb-only genres: almost no labelled examples, but an LLM may name them.
IMDB_ONLY_GENRES: tuple[str, ...] = ("Biography", "Film-Noir", "Musical", "Sport")

_DEFAULT_SYNONYMS = {
    "science fiction": "Sci-Fi",
    "science-fiction": "Sci-Fi",
    "scifi": "Sci-Fi",
    "sci fi": "Sci-Fi",
    "film noir": "Film-Noir",
    "noir": "Film-Noir",
    "sports": "Sport",
    "biopic": "Biography",
    "animated": "Animation",
}
_SEPARATORS = re.compile(r"[,|/;]")
# a label of the corpus needs this many films to be learned by the vote and the heads; fewer, it is left to the LLM
MIN_EXAMPLES = 5
MAX_LABEL_CHARS = 60


def label_key(label: str) -> str:
    """How labels are compared: case, non-breaking and repeated spaces do not matter."""
    return " ".join(label.replace("\xa0", " ").split()).casefold()


def clean_label(label: str) -> str:
    return " ".join(label.replace("\xa0", " ").split())


@dataclass(frozen=True)
class Vocabulary:
    labels: tuple[str, ...]              # learned from labelled examples: what the vote and the heads score
    llm_only: tuple[str, ...] = ()       # too few examples to learn: only an LLM names them
    synonyms: Mapping[str, str] = field(default_factory=dict)  # label_key(source label) → label

    @property
    def names(self) -> tuple[str, ...]:
        """Every label an answer may carry."""
        return self.labels + self.llm_only

    def canonical(self, label: str) -> str | None:
        """The vocabulary's label for a source label, or None when it maps nowhere ("TV Movie", "Foreign")."""
        key = label_key(label)
        return self._lookup().get(key)

    def map_labels(self, labels: Iterable[str]) -> tuple[list[str], list[str]]:
        """Split source labels into (labels of the vocabulary without duplicates, labels that map nowhere)."""
        mapped: list[str] = []
        unmapped: list[str] = []
        for label in labels:
            label = clean_label(label)
            if not label:
                continue
            name = self.canonical(label)
            if name is None:
                unmapped.append(label)
            elif name not in mapped:
                mapped.append(name)
        return mapped, unmapped

    def _lookup(self) -> dict[str, str]:
        table = self.__dict__.get("_table")
        if table is None:
            table = {label_key(name): name for name in self.names} | dict(self.synonyms)
            object.__setattr__(self, "_table", table)
        return table

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "llm_only": list(self.llm_only), "synonyms": dict(self.synonyms)}

    @classmethod
    def from_manifest(cls, stored) -> Vocabulary:
        """What a manifest records; a manifest of an earlier build (a plain list) had the default."""
        if not isinstance(stored, dict):
            return DEFAULT
        return cls(tuple(stored["labels"]), tuple(stored.get("llm_only", ())), dict(stored.get("synonyms", {})))

    def is_default(self) -> bool:
        return self == DEFAULT

    def with_enough_examples(self, counts: Counter) -> Vocabulary:
        """Labels with fewer than MIN_EXAMPLES films in the corpus are left to the LLM."""
        learned = tuple(label for label in self.labels if counts[label] >= MIN_EXAMPLES)
        return Vocabulary(learned, self.llm_only + tuple(label for label in self.labels if label not in learned),
                          self.synonyms)


DEFAULT = Vocabulary(SHARED_GENRES, IMDB_ONLY_GENRES, _DEFAULT_SYNONYMS)


def from_file(path: Path) -> Vocabulary:
    """One label a line; `Label: source label, another` maps those source labels onto it; # starts a comment."""
    labels, synonyms = [], {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, sources = line.partition(":")
        name = clean_label(name)
        if not name or len(name) > MAX_LABEL_CHARS:
            raise ValueError(f"{path}:{number}: a label must have 1 to {MAX_LABEL_CHARS} characters")
        if name not in labels:
            labels.append(name)
        for source in split_labels(sources):
            synonyms[label_key(source)] = name
    if not labels:
        raise ValueError(f"{path} names no label")
    return Vocabulary(tuple(labels), (), synonyms)


def from_corpus(label_counts: Counter) -> Vocabulary:
    """The labels a corpus carries (in their most frequent spelling), most frequent first."""
    spellings: dict[str, Counter] = {}
    for label, n in label_counts.items():
        spellings.setdefault(label_key(label), Counter())[clean_label(label)] += n
    ranked = sorted(spellings.values(), key=lambda c: -sum(c.values()))
    return Vocabulary(tuple(c.most_common(1)[0][0] for c in ranked if len(c.most_common(1)[0][0]) <= MAX_LABEL_CHARS))


def split_labels(text: str) -> list[str]:
    """'Drama,\xa0Action' or 'Drama | Action' -> ['Drama', 'Action']."""
    return [part for part in (p.replace("\xa0", " ").strip() for p in _SEPARATORS.split(text or "")) if part]
