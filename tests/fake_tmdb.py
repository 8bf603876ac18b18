"""A local stand-in for TMDb's v3 API, answering its documented routes with bodies of the documented shape,
filled with real films (ids, genres, overviews, companies) from the TMDB 5000 file."""
from __future__ import annotations

import csv
import json
import re
import threading
import time

from .conftest import REFERENCE
from .local_server import LocalServer

API_KEY = "test-key"


def _catalogue() -> list[dict]:
    return list(csv.DictReader((REFERENCE / "tmdb_5000_movies.csv").open(encoding="utf-8")))


def _summary(row: dict) -> dict:
    return {"adult": False, "backdrop_path": None, "genre_ids": [g["id"] for g in json.loads(row["genres"])],
            "id": int(row["id"]), "original_language": row["original_language"],
            "original_title": row["original_title"], "overview": row["overview"],
            "popularity": float(row["popularity"]), "poster_path": None, "release_date": row["release_date"],
            "title": row["title"], "video": False, "vote_average": float(row["vote_average"]),
            "vote_count": int(row["vote_count"])}


def _page(results: list[dict]) -> dict:
    return {"page": 1, "results": results[:20], "total_pages": 1, "total_results": len(results)}


class FakeTmdbServer(LocalServer):
    """`hang_s`: every answer takes that long; `gate`: every answer waits until it is set."""

    def __init__(self, hang_s: float = 0.0, gate: threading.Event | None = None):
        super().__init__()
        self.hang_s, self.gate = hang_s, gate
        self.films = _catalogue()

    def respond(self, method, path, query, body):
        if self.hang_s:
            time.sleep(self.hang_s)
        if self.gate is not None:
            self.gate.wait(120)
        if query.get("api_key") != API_KEY:
            return 401, {"status_code": 7, "status_message": "Invalid API key: You must be granted a valid key.",
                         "success": False}
        if path == "/3/search/movie":
            wanted = query.get("query", "").lower()
            found = [r for r in self.films if wanted in r["title"].lower()
                     and (not query.get("year") or r["release_date"].startswith(query["year"]))]
            return 200, _page([_summary(r) for r in sorted(found, key=lambda r: -float(r["popularity"]))])
        if match := re.fullmatch(r"/3/movie/(\d+)", path):
            row = next((r for r in self.films if r["id"] == match.group(1)), None)
            if row is None:
                return 404, {"status_code": 34, "status_message": "The resource you requested could not be found.",
                             "success": False}
            return 200, _summary(row) | {"genres": json.loads(row["genres"]), "runtime": 0,
                                         "production_companies": json.loads(row["production_companies"])}
        if path == "/3/search/company":
            wanted = query.get("query", "").lower()
            companies = {c["id"]: c["name"] for r in self.films for c in json.loads(r["production_companies"])
                         if wanted in c["name"].lower()}
            return 200, _page([{"id": i, "logo_path": None, "name": n, "origin_country": "US"}
                               for i, n in sorted(companies.items())])
        if path == "/3/discover/movie":
            company = int(query.get("with_companies", "0"))
            found = [r for r in self.films if any(c["id"] == company for c in json.loads(r["production_companies"]))]
            return 200, _page([_summary(r) for r in sorted(found, key=lambda r: -float(r["popularity"]))])
        return 404, {"status_code": 34, "status_message": "The resource you requested could not be found.",
                     "success": False}
