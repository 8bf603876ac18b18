"""Reading labelled movie plots: the reference sources, the generic CSV format, and deduplication.

Every supported file is recognised by its header, so a folder may hold any mix of them.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from service.films import normalise_title, other_titles, years_agree
from service.genres import DEFAULT, Vocabulary, clean_label, from_corpus, split_labels

csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class RawFilm:
    """One row as a source gives it: labels not yet mapped to the vocabulary."""
    title: str
    year: int | None
    plot: str
    labels: tuple[str, ...]
    companies: tuple[str, ...] = ()   # production companies, where the source lists them
    aliases: tuple[str, ...] = ()     # the film's other titles: its original title, other languages' titles


@dataclass(frozen=True)
class Film:
    title: str
    year: int | None
    plot: str
    genres: tuple[str, ...]
    source: str
    companies: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other titles the film goes by (its original title, ...), matched by lookups

    def to_dict(self) -> dict:
        own = asdict(self) | {"genres": list(self.genres), "companies": list(self.companies)}
        own.pop("aliases")
        return own | ({"aliases": list(self.aliases)} if self.aliases else {})

    @classmethod
    def from_dict(cls, d: dict) -> Film:
        return cls(d["title"], d.get("year"), d["plot"], tuple(d["genres"]), d.get("source", ""),
                   tuple(d.get("companies", ())), tuple(d.get("aliases", ())))


class CorpusFormatError(ValueError):
    pass


_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


def parse_year(text: str | None) -> int | None:
    match = _YEAR.search(text or "")
    return int(match.group(1)) if match else None


def plot_key(plot: str) -> str:
    """Which film a description is, when it names none: its normalised text (a prefix film_key never has)."""
    return "plot:" + hashlib.sha256((normalise_title(plot) or plot).encode()).hexdigest()[:24]


def _clean(text: str | None) -> str:
    return " ".join((text or "").replace("\xa0", " ").split())


# --- one reader per source format -------------------------------------------------------------

def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a comma-separated file with a header; the file is closed when the rows end or are abandoned."""
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _read_tmdb_5000(path: Path) -> Iterator[RawFilm]:
    for row in _rows(path):
        labels = tuple(g["name"] for g in json.loads(row["genres"] or "[]"))
        companies = tuple(c["name"] for c in json.loads(row.get("production_companies") or "[]"))
        yield RawFilm(row["title"], parse_year(row["release_date"]), row["overview"], labels, companies,
                      other_titles([row.get("original_title")], row["title"]))


_DATED_LINE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2});")
# The fields after Overview, read from the end of a repaired record: Popularity, Vote_Count,
# Vote_Average, Original_Language, Genre, Poster_Url (separators there may be ';' or ',').
_MYMOVIEDB_TAIL = re.compile(
    r'[;,]"?[\d.]+[;,]\d+[;,][\d.]+[;,][a-z]{2,3}[;,](?P<genre>.*?)"*;(?:https?://\S*?)?[;\s]*$')


def _read_mymoviedb(path: Path) -> Iterator[RawFilm]:
    """`;`-separated, one film a line, except for a few overviews that broke across lines with their
    commas turned into `;`: a line that does not start with a date continues the record before it."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    records: list[list[str]] = []
    for line in lines:
        if _DATED_LINE.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    for record in records:
        yield _mymoviedb_row(record[0]) if len(record) == 1 else _mymoviedb_repaired(record)


def _mymoviedb_row(line: str) -> RawFilm:
    row = next(csv.reader([line], delimiter=";"))
    date, title, overview, genre = row[0], row[1], row[2], row[7] if len(row) > 7 else ""
    return RawFilm(title, parse_year(date), overview, tuple(split_labels(genre)))


def _mymoviedb_repaired(lines: list[str]) -> RawFilm:
    joined = " ".join([line.rstrip(";") for line in lines[:-1]] + lines[-1:])
    date, title, rest = joined.split(";", 2)
    tail = _MYMOVIEDB_TAIL.search(rest)
    overview = rest[: tail.start()] if tail else rest
    overview = re.sub(r"\s*;+\s*", ", ", overview.replace('"', "")).strip(" ,")
    labels = tuple(split_labels(tail["genre"].replace('"', ""))) if tail else ()
    return RawFilm(title, parse_year(date), overview, labels)


def _read_movies_overview(path: Path) -> Iterator[RawFilm]:
    """Genres are TMDB ids, resolved through the id table that lies beside the file."""
    id_table = path.with_name(f"{path.stem}_genres.csv")
    if not id_table.exists():
        raise CorpusFormatError(f"{path.name} names genres by id: {id_table.name} must lie beside it")
    names = {row["id"]: row["name"] for row in _rows(id_table)}
    for row in _rows(path):
        ids = re.findall(r"\d+", row["genre_ids"] or "")
        labels = tuple(names.get(i, f"unknown id {i}") for i in ids)
        yield RawFilm(row["title"], None, row["overview"], labels)


def _read_imdb_movies(path: Path) -> Iterator[RawFilm]:
    for row in _rows(path):
        yield RawFilm(row["names"], None, row["overview"], tuple(split_labels(row["genre"])))


def _read_imdb_top_1000(path: Path) -> Iterator[RawFilm]:
    for row in _rows(path):
        yield RawFilm(row["Series_Title"], parse_year(row["Released_Year"]), row["Overview"],
                      tuple(split_labels(row["Genre"])))


def _read_generic(path: Path) -> Iterator[RawFilm]:
    """The format users bring: title,year,plot,genres (genres comma-separated, year may be empty), and
    optionally companies and aliases (the film's other titles), each `|`-separated (names hold commas)."""
    for row in _rows(path):
        companies = tuple(c.strip() for c in (row.get("companies") or "").split("|") if c.strip())
        yield RawFilm(row["title"], parse_year(row.get("year")), row["plot"], tuple(split_labels(row["genres"])),
                      companies, other_titles((row.get("aliases") or "").split("|"), row["title"] or ""))


Reader = Callable[[Path], Iterator[RawFilm]]

# Recognised by the columns of the header, in the order their films are preferred when deduplicating.
FORMATS: tuple[tuple[str, frozenset[str], Reader], ...] = (
    ("generic", frozenset({"title", "year", "plot", "genres"}), _read_generic),
    ("tmdb_5000", frozenset({"title", "release_date", "overview", "genres"}), _read_tmdb_5000),
    ("mymoviedb", frozenset({"Release_Date", "Title", "Overview", "Genre"}), _read_mymoviedb),
    ("movies_overview", frozenset({"title", "overview", "genre_ids"}), _read_movies_overview),
    ("imdb_movies", frozenset({"names", "genre", "overview"}), _read_imdb_movies),
    ("imdb_top_1000", frozenset({"Series_Title", "Released_Year", "Genre", "Overview"}), _read_imdb_top_1000),
)


def detect_format(path: Path) -> str | None:
    with path.open(encoding="utf-8", newline="") as f:
        header = f.readline()
    delimiter = ";" if header.count(";") > header.count(",") else ","
    columns = {c.strip() for c in next(csv.reader([header], delimiter=delimiter), [])}
    for name, required, _ in FORMATS:
        if required <= columns:
            return name
    return None


def corpus_files(path: Path) -> list[tuple[str, Path]]:
    """(format, file) for a file or for every recognised CSV in a folder, preferred formats first."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no corpus at {path}")
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    found = [(fmt, f) for f in files if (fmt := detect_format(f))]
    if not found:
        raise CorpusFormatError(
            f"no recognised corpus file in {path}: expected CSV columns title,year,plot,genres "
            "or one of the reference formats")
    order = [name for name, _, _ in FORMATS]
    return sorted(found, key=lambda pair: (order.index(pair[0]), pair[1].name))


def read_file(fmt: str, path: Path) -> Iterator[RawFilm]:
    reader = next(r for name, _, r in FORMATS if name == fmt)
    return reader(path)


# --- ingestion: mapping labels, dropping unusable rows, deduplicating --------------------------

@dataclass
class SourceStats:
    format: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)


@dataclass
class Corpus:
    films: list[Film]
    sources: dict[str, SourceStats]
    unmapped_labels: Counter
    vocabulary: Vocabulary = DEFAULT
    corrections: dict = field(default_factory=dict)  # editors' corrections folded in (corrections/fold.py)

    def genre_counts(self) -> Counter:
        return Counter(g for film in self.films for g in film.genres)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for film in self.films:
            digest.update(json.dumps(film.to_dict(), sort_keys=True).encode())
        return digest.hexdigest()

    def summary(self) -> dict:
        return {
            "sources": {name: {"format": s.format, "read": s.read, "kept": s.kept, "dropped": dict(s.dropped)}
                        for name, s in self.sources.items()},
            "genres": dict(self.genre_counts().most_common()),
            "unmapped_labels": dict(self.unmapped_labels.most_common()),
            # labels of the vocabulary with too few films to learn: only an LLM names them
            "left_to_llm": {label: self.genre_counts()[label] for label in self.vocabulary.llm_only},
            "corrections": self.corrections or {"store": None, "through_change": 0, "read": 0, "superseded": 0,
                                                 "added": 0, "replaced": 0},
        }


class _Deduplicator:
    """Same film = same normalised title and, where both have one, the same year; or the same plot."""

    def __init__(self) -> None:
        self.films: list[Film] = []
        self._by_title: dict[str, list[int]] = {}
        self._plots: set[str] = set()

    def add(self, film: Film) -> str | None:
        """Keep the film, or return why it is a duplicate. A kept film without a year or companies takes a
        duplicate's."""
        plot_key = normalise_title(film.plot) or film.plot  # a text of emoji alone normalises to nothing
        if plot_key in self._plots:
            return "duplicate plot"
        title_key = normalise_title(film.title) or film.title
        for i in self._by_title.get(title_key, []):
            kept = self.films[i]
            if years_agree(kept.year, film.year):
                aliases = kept.aliases + tuple(a for a in film.aliases if a not in kept.aliases)
                self.films[i] = replace(kept, year=kept.year or film.year, companies=kept.companies or film.companies,
                                        aliases=aliases)
                return "duplicate title"
        self._by_title.setdefault(title_key, []).append(len(self.films))
        self._plots.add(plot_key)
        self.films.append(film)
        return None


def build_corpus(files: Iterable[tuple[str, Path]], vocabulary: Vocabulary | str = DEFAULT) -> Corpus:
    """The films of the files, their labels mapped onto the vocabulary ("corpus": the labels the files carry),
    deduplicated. Labels of a vocabulary other than the default with too few films are left to the LLM."""
    files = list(files)
    if vocabulary == "corpus":
        vocabulary = from_corpus(Counter(clean_label(label) for fmt, path in files for raw in read_file(fmt, path)
                                         for label in raw.labels if clean_label(label)))
    dedup = _Deduplicator()
    sources: dict[str, SourceStats] = {}
    unmapped: Counter = Counter()
    for fmt, path in files:
        stats = sources.setdefault(path.stem, SourceStats(fmt))
        for raw in read_file(fmt, path):
            stats.read += 1
            genres, unknown = vocabulary.map_labels(raw.labels)
            unmapped.update(unknown)
            plot, title = _clean(raw.plot), _clean(raw.title)
            reason = ("no plot" if not plot else "no title" if not title else "no genre" if not genres
                      else dedup.add(Film(title, raw.year, plot, tuple(genres), path.stem,
                                          tuple(_clean(c) for c in raw.companies), raw.aliases)))
            if reason:
                stats.dropped[reason] += 1
            else:
                stats.kept += 1
    corpus = Corpus(dedup.films, sources, unmapped, vocabulary)
    if not vocabulary.is_default():
        corpus.vocabulary = vocabulary.with_enough_examples(corpus.genre_counts())
    return corpus


def load_corpus(path: Path, vocabulary: Vocabulary | str = DEFAULT) -> Corpus:
    return build_corpus(corpus_files(path), vocabulary)
