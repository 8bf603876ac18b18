"""What the reference index itself answers a lookup with, no key needed: its 16k films by title (their own or an
other title, through films.py's TitleIndex), by their very plot, and by production company (the TMDB 5000 films
list theirs)."""
from __future__ import annotations

import threading
from collections import Counter

from service.corpus import Film, plot_key
from service.films import Named, TitleIndex, normalise_title
from service.lookup.kinds import spellings


class ReferenceCatalogue:
    def __init__(self, films: list[Film]):
        self._films = films
        self._titles = TitleIndex(films)
        self._plots: dict[str, Film] | None = None
        self._lock = threading.Lock()
        self._companies: dict[str, tuple[str, list[Film]]] = {}  # normalised name → (name, its films)
        for film in films:
            for company in film.companies:
                self._companies.setdefault(normalise_title(company), (company, []))[1].append(film)

    def named(self, title: str, year: int | None = None) -> Named[Film]:
        """The films this title names — "Matrix" names "The Matrix" too — with `year`, those of that very year
        when any, else those of no known year (films.TitleIndex: one, several or none)."""
        found = {}
        for spelling in spellings(title):
            named = self._titles.named(spelling, year)
            found |= dict(zip(named.positions, named.films))
        if year is not None and any(film.year == year for film in found.values()):
            found = {i: film for i, film in found.items() if film.year == year}
        return Named(tuple(found.values()), tuple(found))

    def chosen(self, title: str, year: int | None) -> tuple[Film | None, list[Film]]:
        """(the film a lookup answers with, every film of the title): of several, the newest."""
        named = self.named(title, year)
        every = list((named if year is None else self.named(title)).films)
        return (max(named.films, key=lambda f: f.year or 0) if named.films else None), every

    def with_plot(self, text: str) -> Film | None:
        """The reference film whose plot this text is (normalised: case, accents, punctuation aside)."""
        with self._lock:
            if self._plots is None:  # keyed on first use: a second or so for 16k plots
                self._plots = {plot_key(f.plot): f for f in self._films}
        return self._plots.get(plot_key(text))

    def company(self, name: str) -> tuple[list[str], list[Film]]:
        """The reference's companies of that name, or whose name goes on from it ("Pixar" → "Pixar
        Animation Studios"; "Warner Bros." → "Warner Bros. Pictures", "Warner Bros. Animation"), and their films."""
        wanted = normalise_title(name)
        if not wanted:
            return [], []
        matches = [v for k, v in self._companies.items() if k == wanted or k.startswith(wanted + " ")]
        matches.sort(key=lambda match: (normalise_title(match[0]) != wanted, -len(match[1])))
        films = list({id(f): f for _, fs in matches for f in fs}.values())
        return [company for company, _ in matches], films


def genre_shares(films: list[Film]) -> dict[str, float]:
    counts = Counter(g for film in films for g in film.genres)
    return {g: round(n / len(films), 3) for g, n in counts.most_common()}
