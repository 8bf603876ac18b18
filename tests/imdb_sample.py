"""A small IMDb database built with cinemagoer's own builder from TSV.gz files in IMDb's dataset layout
(all seven files, header rows, `\\N` for empty fields), holding real films of imdb_top_1000.csv with their
IMDb genres, years, ratings, directors and stars. The ids are made up: the CSV carries none."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

from .conftest import SHARED_DATA

LAYOUT = {
    "title.basics.tsv.gz": ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear",
                            "endYear", "runtimeMinutes", "genres"],
    "title.akas.tsv.gz": ["titleId", "ordering", "title", "region", "language", "types", "attributes",
                          "isOriginalTitle"],
    "title.crew.tsv.gz": ["tconst", "directors", "writers"],
    "title.episode.tsv.gz": ["tconst", "parentTconst", "seasonNumber", "episodeNumber"],
    "title.principals.tsv.gz": ["tconst", "ordering", "nconst", "category", "job", "characters"],
    "title.ratings.tsv.gz": ["tconst", "averageRating", "numVotes"],
    "name.basics.tsv.gz": ["nconst", "primaryName", "birthYear", "deathYear", "primaryProfession",
                           "knownForTitles"],
}
FILMS = ["The Matrix", "The Dark Knight", "Inception", "Sen to Chihiro no kamikakushi", "Toy Story", "The Godfather",
         "Alien", "Heat", "Se7en", "The Shining", "Up", "Psycho", "Casablanca", "Gladiator", "Jaws",
         "The Lion King", "Amélie", "Unforgiven", "1917", "Mad Max: Fury Road"]
AKAS = {"Sen to Chihiro no kamikakushi": "Spirited Away"}  # the English title, as IMDb's akas file has it


def top_1000_rows(titles=FILMS) -> list[dict]:
    rows = {r["Series_Title"]: r for r in csv.DictReader((SHARED_DATA / "dev-eval" / "imdb_top_1000.csv").open(
        encoding="utf-8"))}
    return [rows[t] for t in titles]


def write_datasets(folder: Path, rows: list[dict]) -> None:
    tables: dict[str, list[list[str]]] = {name: [] for name in LAYOUT}
    people: dict[str, str] = {}

    def person(name: str) -> str:
        return people.setdefault(name, f"nm{9000001 + len(people):07d}")

    for i, row in enumerate(rows):
        tconst = f"tt{9000001 + i:07d}"
        runtime = row["Runtime"].split()[0]
        genres = ",".join(g.strip() for g in row["Genre"].split(","))
        tables["title.basics.tsv.gz"].append([tconst, "movie", row["Series_Title"], row["Series_Title"], "0",
                                              row["Released_Year"], r"\N", runtime, genres])
        tables["title.akas.tsv.gz"].append([tconst, "1", row["Series_Title"], r"\N", r"\N", "original", r"\N", "1"])
        if row["Series_Title"] in AKAS:
            tables["title.akas.tsv.gz"].append([tconst, "2", AKAS[row["Series_Title"]], "US", "en", "imdbDisplay",
                                                r"\N", "0"])
        director = person(row["Director"])
        tables["title.crew.tsv.gz"].append([tconst, director, r"\N"])
        tables["title.ratings.tsv.gz"].append([tconst, row["IMDB_Rating"], row["No_of_Votes"]])
        tables["title.principals.tsv.gz"].append([tconst, "1", director, "director", r"\N", r"\N"])
        for order, star in enumerate((row["Star1"], row["Star2"]), start=2):
            tables["title.principals.tsv.gz"].append([tconst, str(order), person(star), "actor", r"\N", r"\N"])
    for name, nconst in people.items():
        tables["name.basics.tsv.gz"].append([nconst, name, r"\N", r"\N", "actor", r"\N"])
    for filename, header in LAYOUT.items():
        with gzip.open(folder / filename, "wt", encoding="utf-8") as f:
            for line in [header, *tables[filename]]:
                f.write("\t".join(line) + "\n")


def build_database(folder: Path, rows: list[dict] | None = None) -> Path:
    """TSV files → cinemagoer's builder (the same s32cinemagoer path `make imdb-db` uses) → SQLite file."""
    from service.lookup.imdb import build_imdb_database

    tsv = folder / "tsv"
    tsv.mkdir(parents=True, exist_ok=True)
    write_datasets(tsv, rows or top_1000_rows())
    return build_imdb_database(tsv, folder / "imdb.db")
