"""One lookup: decide what the text is, ask the databases that are configured, and say what happened.

Sources: IMDb (local cinemagoer database: genres, year, rating, id; no plots), TMDb (online with an API key:
overview and genres; a company's catalogue), and the reference index itself, which needs no key: 15k
labelled films by title, and the production companies of the TMDB 5000 films (the only reference source
that lists them). Every source may be missing or fail; the lookup then says why.

Same-titled films: the one of the year given, else the most recent; the others are returned as candidates.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cachetools import LRUCache

from service.corpus import Film
from service.films import normalise_title
from service.corrections import Corrections
from service.genres import DEFAULT
from service.lookup.imdb import ImdbSource, ImdbUnavailable
from service.lookup.kinds import Kind, TitleQuery, detect_kind, parse_title, spellings, titles_in_review
from service.lookup.reference import ReferenceCatalogue, genre_shares
from service.lookup.tmdb import TmdbClient, TmdbUnavailable
from service.store import ReferenceIndex

COMPANY_GENRE_SHARE = 0.25  # a genre of at least this share of a company's films describes the company
COMPANY_TITLES = 20  # films of a company listed in an answer, the newest first


@dataclass
class Match:
    title: str
    year: int | None
    imdb_id: str | None = None
    tmdb_id: int | None = None
    rating: float | None = None
    alias: str | None = None  # the film's other title that matched (its original title, say)


@dataclass
class Candidate:
    """Another film of the same title, for a person to pick instead."""
    title: str
    year: int | None
    genres: list[str]


@dataclass
class LookupResult:
    kind: Kind
    query: str
    match: Match | None = None
    company: dict | None = None
    known_genres: dict[str, list[str]] = field(default_factory=dict)  # source → genres
    candidates: list[Candidate] = field(default_factory=list)
    plot: str | None = None
    plot_source: str | None = None
    notes: list[str] = field(default_factory=list)                     # why a source was skipped or failed
    consulted: list[str] = field(default_factory=list)                 # sources that answered, found or not
    failed: bool = False                                               # a source failed: not worth caching
    failed_sources: list[str] = field(default_factory=list)

    def outcomes(self) -> dict[str, str]:
        """Per source: found, not_found, failed or skipped (not configured); none for a description."""
        if self.kind == "description":
            return {}
        out = {source: "found" if source in self.known_genres else "failed" if source in self.failed_sources
               else "not_found" if source in self.consulted else "skipped" for source in ("imdb", "tmdb")}
        return out | {"reference": "found" if "reference" in self.known_genres else "not_found"}

    @property
    def available(self) -> bool:
        """False when no database could be asked (none configured, or all failed)."""
        return self.kind == "description" or bool(self.consulted)


class Lookup:
    def __init__(self, imdb: ImdbSource | None, tmdb: TmdbClient | None, index: ReferenceIndex | None,
                 cache_size: int = 1024, why_no_imdb: str = "", why_no_tmdb: str = "",
                 corrections: Corrections | None = None):
        self.imdb, self.tmdb = imdb, tmdb
        self.corrections = corrections  # an editor's correction of a film is its answer
        # IMDb and TMDb speak the default genres: their labels are mapped onto the index's vocabulary
        self.vocabulary = index.vocabulary if index is not None else DEFAULT
        self.why_no_imdb = why_no_imdb or "IMDb lookup skipped: no IMDb database (run `make imdb-db`)"
        self.why_no_tmdb = why_no_tmdb or "TMDb lookup skipped: no TMDB_API_KEY set"
        self._cache: LRUCache = LRUCache(maxsize=cache_size)
        self._cache_lock = threading.Lock()  # cachetools caches are not thread-safe; requests run in threads
        self.reference = ReferenceCatalogue(index.films if index is not None else [])

    def close(self) -> None:
        if self.tmdb is not None:
            self.tmdb.close()

    def lookup(self, text: str, kind: Kind | None = None) -> LookupResult:
        kind = kind or detect_kind(text)
        # a correction changes what a title answers: cached answers are of one state of the corrections
        generation = self.corrections.generation if self.corrections is not None else None
        key = (kind, " ".join(text.split()).lower(), generation)
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = LookupResult(kind, text)
        if kind == "title":
            self._find_film(result, [parse_title(text)])
        elif kind == "review":
            self._find_film(result, titles_in_review(text))
        elif kind == "company":
            self._find_company(result, text)
        if not result.failed:
            with self._cache_lock:
                self._cache[key] = result
        return result

    def _find_film(self, result: LookupResult, queries: list[TitleQuery]) -> None:
        tmdb_deadline = self.tmdb.deadline() if self.tmdb else 0.0
        for query in queries:
            if self._from_imdb(result, query) | self._from_tmdb(result, query, tmdb_deadline):
                break
        result.notes = list(dict.fromkeys(result.notes))  # one note per source, however many titles were tried
        result.consulted = list(dict.fromkeys(result.consulted))
        if queries and result.match is None and result.consulted:
            result.notes.append(f"no film found in {' or '.join(result.consulted)} for "
                                f"{', '.join(repr(q.title) for q in queries)}")
        wanted = [result.match] if result.match else queries
        self._from_reference(result, [(m.title, m.year) for m in wanted])

    @staticmethod
    def _ask(result: LookupResult, source: str, call, failure: type[Exception]):
        """What the source answers (None for not found), or None with a note when it failed."""
        try:
            answer = call()
        except failure as exc:
            result.notes.append(f"{source} lookup failed: {exc}")
            result.failed = True
            result.failed_sources.append(source.lower())
            return None
        result.consulted.append(source.lower())
        return answer

    def _from_imdb(self, result: LookupResult, query: TitleQuery) -> bool:
        if self.imdb is None:
            result.notes.append(self.why_no_imdb)
            return False
        film = self._ask(result, "IMDb", lambda: self.imdb.find(query), ImdbUnavailable)
        if film is None:
            return False
        result.match = result.match or Match(film.title, film.year)
        result.match.imdb_id, result.match.rating = film.imdb_id, film.rating
        result.known_genres["imdb"] = self.vocabulary.map_labels(film.genres)[0]
        return True

    def _from_tmdb(self, result: LookupResult, query: TitleQuery, deadline: float) -> bool:
        if self.tmdb is None:
            result.notes.append(self.why_no_tmdb)
            return False
        query = TitleQuery(query.title, query.year or (result.match and result.match.year))
        film = self._ask(result, "TMDb", lambda: self.tmdb.find_movie(query, deadline), TmdbUnavailable)
        if film is None:
            return False
        result.match = result.match or Match(film.title, film.year)
        result.match.tmdb_id = film.tmdb_id
        result.known_genres["tmdb"] = self.vocabulary.map_labels(film.genres)[0]
        if film.overview:
            result.plot, result.plot_source = film.overview, "tmdb"
        return True

    def _from_reference(self, result: LookupResult, wanted: list[tuple[str, int | None]]) -> None:
        """The reference's own film of that title: its labels, and its plot where no database gave one
        (IMDb has no plots; with no database at all, the index still knows 15k films by title)."""
        for title, year in wanted:
            chosen, films = self.reference.chosen(title, year)
            if chosen is None:
                continue
            result.known_genres["reference"] = list(chosen.genres)
            corrected = self.corrections.corrected(chosen) if self.corrections is not None else None
            if corrected is not None:
                result.known_genres = {"correction": list(corrected.genres)} | result.known_genres
            result.candidates = [Candidate(f.title, f.year, list(f.genres)) for f in films if f is not chosen]
            result.match = result.match or Match(chosen.title, chosen.year, alias=_alias_matched(chosen, title))
            if result.plot is None:
                result.plot, result.plot_source = chosen.plot, "reference"
            return

    def _find_company(self, result: LookupResult, name: str) -> None:
        """TMDb's catalogue of the company when a key is set, and the reference's films of it: its genres are
        those of at least a quarter of its films."""
        if self.tmdb is None:
            result.notes.append(self.why_no_tmdb + " (IMDb's datasets have no companies)")
        else:
            company = self._ask(result, "TMDb", lambda: self.tmdb.company(name, self.tmdb.deadline()),
                                TmdbUnavailable)
            if company is not None:
                result.company = {"name": company.name, "tmdb_id": company.tmdb_id, "films": company.films,
                                  "genre_shares": company.genre_shares, "titles": [], "source": "tmdb"}
                result.known_genres["tmdb"] = self.vocabulary.map_labels(_describing(company.genre_shares))[0]
        names, films = self.reference.company(name)
        if films:
            shares = genre_shares(films)
            result.known_genres["reference"] = _describing(shares)
            titles = [f"{f.title} ({f.year})" if f.year else f.title
                      for f in sorted(films, key=lambda f: -(f.year or 0))]
            result.company = result.company or {"name": names[0], "tmdb_id": None, "films": len(films),
                                                "genre_shares": shares, "titles": [], "source": "reference"}
            result.company["titles"] = titles[:COMPANY_TITLES]
        if result.company is None and not result.failed:
            result.notes.append(f"no company found for {name!r}")


def _alias_matched(film: Film, asked: str) -> str | None:
    """The film's other title the text asked for, when it was not the film's own title."""
    keys = {normalise_title(spelling) for spelling in spellings(asked)}
    if normalise_title(film.title) in keys:
        return None
    return next((alias for alias in film.aliases if normalise_title(alias) in keys), None)


def _describing(shares: dict[str, float]) -> list[str]:
    return [g for g, share in shares.items() if share >= COMPANY_GENRE_SHARE]


def make_lookup(settings, index: ReferenceIndex | None, corrections: Corrections | None = None) -> Lookup:
    """The sources the settings allow: IMDb when its database exists, TMDb when a key is set."""
    imdb, why_no_imdb = None, ""
    if settings.lookup.imdb_db.is_file():
        try:
            imdb = ImdbSource(settings.lookup.imdb_db, settings.lookup.timeout_s)
        except Exception as exc:  # noqa: BLE001 - a broken database must not stop the service
            why_no_imdb = f"IMDb lookup skipped: {exc}"
    tmdb = None
    if settings.lookup.tmdb_api_key is not None:
        lookup = settings.lookup
        tmdb = TmdbClient(lookup.tmdb_api_key.get_secret_value(), lookup.tmdb_base_url, lookup.timeout_s)
    return Lookup(imdb, tmdb, index, settings.lookup.cache_size, why_no_imdb=why_no_imdb, corrections=corrections)


def combine(result: LookupResult, predicted: list[str], max_genres: int) -> tuple[list[str], dict[str, list[str]]]:
    """The known genres first (IMDb, then TMDb, then the reference's labels), then the predicted ones; and
    where each came from. A company found is described by its films alone: its name is no plot."""
    corrected = result.known_genres.get("correction")
    known = list(corrected) if corrected is not None else \
        list(dict.fromkeys(g for genres in result.known_genres.values() for g in genres))
    if result.kind == "company" and known:
        predicted = []
    genres = (known + [g for g in predicted if g not in known])[:max(max_genres, len(known))]
    sources = {g: [s for s, gs in result.known_genres.items() if g in gs] + (["predicted"] if g in predicted else [])
               for g in genres}
    return genres, sources
