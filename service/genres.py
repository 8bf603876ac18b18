"""The genre vocabulary and the one mapping from source labels (TMDB, IMDb) onto it."""
from __future__ import annotations

import re
from collections.abc import Iterable

# The 18 genres both TMDB and IMDb use, in IMDb spelling. The reference corpus labels only these.
SHARED_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
    "Fantasy", "History", "Horror", "Music", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
# IMDb-only genres: almost no labelled examples, but an LLM may name them.
IMDB_ONLY_GENRES: tuple[str, ...] = ("Biography", "Film-Noir", "Musical", "Sport")
VOCABULARY: tuple[str, ...] = SHARED_GENRES + IMDB_ONLY_GENRES

_ALIASES = {
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
_CANONICAL = {g.lower(): g for g in VOCABULARY} | _ALIASES
_SEPARATORS = re.compile(r"[,|/;]")


def _key(label: str) -> str:
    return " ".join(label.replace("\xa0", " ").split()).lower()


def canonical_genre(label: str) -> str | None:
    """The vocabulary name for a source label, or None when it maps nowhere ("TV Movie", "Foreign")."""
    return _CANONICAL.get(_key(label))


def map_labels(labels: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split source labels into (canonical genres without duplicates, labels that map nowhere)."""
    genres: list[str] = []
    unmapped: list[str] = []
    for label in labels:
        label = " ".join(label.replace("\xa0", " ").split())
        if not label:
            continue
        genre = canonical_genre(label)
        if genre is None:
            unmapped.append(label)
        elif genre not in genres:
            genres.append(genre)
    return genres, unmapped


def split_labels(text: str) -> list[str]:
    """'Drama,\xa0Action' or 'Drama | Action' -> ['Drama', 'Action']."""
    return [part for part in (p.replace("\xa0", " ").strip() for p in _SEPARATORS.split(text or "")) if part]
