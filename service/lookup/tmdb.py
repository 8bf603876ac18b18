"""TMDb's v3 API over httpx, every request bounded by the time left to the lookup.

A hand-written client rather than tmdbsimple: that one is built on requests with no timeout, and a lookup
needs one deadline across several calls."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from service.corpus import parse_year
from service.films import normalise_title
from service.genres import DEFAULT
from service.lookup.kinds import TitleQuery

# TMDb's movie genre ids (GET /3/genre/movie/list); TV Movie maps to no genre of the vocabulary.
TMDB_GENRE_IDS = {28: "Action", 12: "Adventure", 16: "Animation", 35: "Comedy", 80: "Crime", 99: "Documentary",
                  18: "Drama", 10751: "Family", 14: "Fantasy", 36: "History", 27: "Horror", 10402: "Music",
                  9648: "Mystery", 10749: "Romance", 878: "Science Fiction", 10770: "TV Movie", 53: "Thriller",
                  10752: "War", 37: "Western"}


AnswerT = TypeVar("AnswerT", bound="_Answer")


class TmdbUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class TmdbFilm:
    tmdb_id: int
    title: str
    year: int | None
    overview: str
    genres: tuple[str, ...]


@dataclass(frozen=True)
class TmdbCompany:
    tmdb_id: int
    name: str
    films: int
    genre_shares: dict[str, float]


def _genres(names) -> tuple[str, ...]:
    mapped = (DEFAULT.canonical(n) for n in names)  # TMDb speaks the default genres
    return tuple(dict.fromkeys(g for g in mapped if g))


# TMDb's answers as documented, the fields used here only. A body that is JSON but not of this shape (a
# missing or non-numeric id, a list that is not a list) is a failed lookup, not a crash: it is refused
# here, before any of it reaches an answer or the lookup cache.
class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Movie(_Answer):
    id: int
    title: str | None = None
    original_title: str | None = None
    release_date: str | None = None
    overview: str | None = None
    genre_ids: list[int] = []


class _Named(_Answer):
    name: str | None = None


class _MovieDetails(_Answer):
    title: str | None = None
    release_date: str | None = None
    overview: str | None = None
    genres: list[_Named] = []


class _Company(_Named):
    id: int


class _Movies(_Answer):
    results: list[_Movie] = []


class _Companies(_Answer):
    results: list[_Company] = []


class TmdbClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float):
        self.timeout_s = timeout_s
        # a v4 read access token is a JWT and goes in a header; a v3 key goes in the query
        bearer = api_key.startswith("eyJ")
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {api_key}"} if bearer else {},
                                 params={} if bearer else {"api_key": api_key})

    def _get(self, path: str, shape: type[AnswerT], deadline: float, **params) -> AnswerT:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TmdbUnavailable(f"TMDb lookup exceeded its {self.timeout_s:g} s budget")
        try:
            response = self.http.get(path, params=params, timeout=left)
            response.raise_for_status()
            return shape.model_validate_json(response.content)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(map(str, problem["loc"])) or "the body"
            raise TmdbUnavailable(f"TMDb answered an unexpected shape ({where}: {problem['msg']})") from exc
        except httpx.TimeoutException as exc:
            raise TmdbUnavailable(f"TMDb did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise TmdbUnavailable(f"TMDb answered HTTP {exc.response.status_code}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise TmdbUnavailable(f"TMDb is unreachable: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.http.close()

    def deadline(self) -> float:
        return time.monotonic() + self.timeout_s

    def find_movie(self, query: TitleQuery, deadline: float) -> TmdbFilm | None:
        params = {"query": query.title} | ({"year": query.year} if query.year else {})
        results = self._get("/3/search/movie", _Movies, deadline, **params).results
        wanted = normalise_title(query.title)
        exact = [r for r in results if wanted in (normalise_title(r.title or ""),
                                                  normalise_title(r.original_title or ""))]
        if not (exact or results):
            return None
        best = (exact or results)[0]
        details = self._get(f"/3/movie/{best.id}", _MovieDetails, deadline)
        names = [g.name or "" for g in details.genres] or [TMDB_GENRE_IDS.get(i, "") for i in best.genre_ids]
        return TmdbFilm(best.id, details.title or best.title or "",
                        parse_year(details.release_date or best.release_date),
                        details.overview or best.overview or "", _genres(names))

    def company(self, name: str, deadline: float) -> TmdbCompany | None:
        results = self._get("/3/search/company", _Companies, deadline, query=name).results
        if not results:
            return None
        wanted = normalise_title(name)
        best = next((r for r in results if normalise_title(r.name or "") == wanted), results[0])
        films = self._get("/3/discover/movie", _Movies, deadline, with_companies=best.id,
                          sort_by="popularity.desc").results
        counts = Counter(g for film in films for g in _genres(TMDB_GENRE_IDS.get(i, "") for i in film.genre_ids))
        shares = {g: round(n / len(films), 3) for g, n in counts.most_common()} if films else {}
        return TmdbCompany(best.id, best.name or name, len(films), shares)
