"""IMDb through cinemagoer's dataset access system: a local SQLite database built from IMDb's
non-commercial datasets by cinemagoer's own importer (what `s32cinemagoer.py` runs).

cinemagoer quirks handled here: its search misses a title given without its leading article
("Matrix" for "The Matrix") and a year not in parentheses ("Matrix 1999"); a missing id gives an almost
empty movie rather than an error; the datasets hold no plots.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from imdb import IMDbError

from service.atomic import atomic_file, atomic_path
from service.films import normalise_title
from service.genres import DEFAULT
from service.lookup.kinds import TitleQuery, spellings

DATASETS_URL = "https://datasets.imdbws.com"
DATASET_FILES = ("name.basics.tsv.gz", "title.akas.tsv.gz", "title.basics.tsv.gz", "title.crew.tsv.gz",
                 "title.episode.tsv.gz", "title.principals.tsv.gz", "title.ratings.tsv.gz")
FILM_KINDS = {"movie", "tv movie", "video movie"}

# cinemagoer logs every exception it raises, with a traceback, at CRITICAL; a failed lookup is an expected
# event that the lookup reports in its notes.
logging.getLogger("imdbpy").setLevel(logging.CRITICAL + 1)


class ImdbUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class ImdbFilm:
    imdb_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    rating: float | None


def download_datasets(folder: Path, timeout_s: float = 60.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for name in DATASET_FILES:
            with client.stream("GET", f"{DATASETS_URL}/{name}") as response, atomic_file(folder / name, "wb") as f:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    f.write(chunk)


def build_imdb_database(tsv_dir: Path, db_path: Path) -> Path:
    """Import the seven TSV.gz files with cinemagoer's importer into a temporary file, then swap it in."""
    from imdb.parser.s3.importer import import_dir

    with atomic_path(db_path) as tmp:
        import_dir(str(tsv_dir), f"sqlite:///{tmp}")
    return db_path


def _check_database(path: Path) -> None:
    """Refuse a file that is not a built database now, rather than on every lookup."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            connection.execute("SELECT tconst, genres FROM title_basics LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise ValueError(f"{path} is not a cinemagoer database ({exc}): run `make imdb-db`") from exc


# SQLite calls the progress handler every this many virtual-machine steps (well under a millisecond).
PROGRESS_STEPS = 10_000


def _read_only_adapter(path: Path, deadlines: threading.local):
    """cinemagoer's SQLite adapter, opening every connection read-only and interrupting any query that runs
    past the deadline of the lookup in this thread. The seam: cinemagoer 2026.x opens a connection per
    query through `SQLiteAdapter._connect` (tests/test_lookup.py checks it)."""
    from imdb.parser.s3.adapters import SQLiteAdapter

    def past_deadline() -> bool:
        deadline = getattr(deadlines, "at", None)
        return deadline is not None and time.monotonic() > deadline

    class ReadOnlySQLiteAdapter(SQLiteAdapter):
        def _connect(self):
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.set_progress_handler(past_deadline, PROGRESS_STEPS)  # true: SQLite interrupts the query
            return connection

    return ReadOnlySQLiteAdapter(str(path))


class ImdbSource:
    """Every `find` has one deadline of `timeout_s` over all its queries: a title with no ASCII letters
    ("1917", a CJK title) has no soundex code, and cinemagoer then scans all of title_akas with LIKE."""

    def __init__(self, db_path: Path, timeout_s: float = 5.0):
        from imdb import Cinemagoer

        if not Path(db_path).is_file():
            raise FileNotFoundError(f"no IMDb database at {db_path}: run `make imdb-db`")
        _check_database(Path(db_path))
        self.timeout_s = timeout_s
        self._deadlines = threading.local()
        self.ia = Cinemagoer("s3", f"sqlite:///{db_path}")
        # cinemagoer opens read-write and without a time limit; we only read, and within a deadline
        self.ia._adapter = _read_only_adapter(Path(db_path), self._deadlines)

    def find(self, query: TitleQuery) -> ImdbFilm | None:
        self._deadlines.at = time.monotonic() + self.timeout_s
        try:
            for title in spellings(query.title):
                film = self._best(title, query.year)
                if film is not None:
                    return film
            return None
        except IMDbError as exc:
            if time.monotonic() > self._deadlines.at:
                raise ImdbUnavailable(f"IMDb did not answer within {self.timeout_s:g} s") from exc
            raise ImdbUnavailable(f"the IMDb database failed: {exc}") from exc
        finally:
            self._deadlines.at = None

    def get(self, imdb_id: str | int) -> ImdbFilm | None:
        movie = self.ia.get_movie(str(imdb_id).removeprefix("tt"))
        if not movie.get("title"):  # a missing id answers an almost empty movie
            return None
        return self._film(movie)

    def _best(self, title: str, year: int | None) -> ImdbFilm | None:
        query = f"{title} ({year})" if year else title  # its parser reads a year only in parentheses
        wanted = normalise_title(title)
        results = [m for m in self.ia.search_movie(query) if normalise_title(m.get("title", "")) == wanted]
        if year:
            results = [m for m in results if str(m.get("year")) == str(year)] or results
        results.sort(key=lambda m: m.get("kind") not in FILM_KINDS)
        return self.get(results[0].movieID) if results else None

    @staticmethod
    def _film(movie) -> ImdbFilm:
        genres, _ = DEFAULT.map_labels(movie.get("genres", []))  # IMDb speaks the default genres
        year = movie.get("year")
        return ImdbFilm(f"tt{int(movie.movieID):07d}", movie["title"], int(year) if year else None,
                        tuple(genres), movie.get("rating"))
