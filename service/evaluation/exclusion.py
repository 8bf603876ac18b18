"""Keeping evaluation honest: the evaluation films are removed from the reference before they are scored as unseen
— by title (their own or another), by their very plot, by a plot that close, and under every reference film the
served recognition would take them for ("suspected same film"), until no film is left that it would take them for.
Which films are one of another set's is decided here once (`same_films`), for the exclusion and for the calibration
sets that must not hold an evaluation film (held_out.py). Knobs are tuned on splits of the reference and the dev
files' calibration halves (scoring/splits.py), never on what is evaluated."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.corpus import Film, plot_key
from service.films import TitleIndex
from service.recognition import Recogniser
from service.store import Neighbour, ReferenceIndex, closest_similarity

# A reference plot this close to a held-out plot (inner product of normalised vectors, by index part) is the same
# film told again: excluded too. Chosen on dev-eval/n_movies.csv, never on an evaluation file: IMDb's descriptions of
# 1,099 films the reference holds (same title and year) against 4,258 it does not. MiniLM at 0.80 finds 36% of the
# former (same film, other words) and a reference plot so close for 1.2% of the latter (some of them the same film
# under another title). e5's similarities are compressed: 0.95 leaves 1.0% of the latter. A German or French plot
# and its film's English one are 0.86 apart in e5 (median), as close as other films: no threshold tells them.
# `moviegenre tune-recognition` measures both again on those descriptions without the evaluation films.
NEAR_DUPLICATE = {"english": 0.80, "multilingual": 0.95}
SEARCHED = 20  # close films per held-out plot, for the suspected same films
MAX_ROUNDS = 10  # of the suspected-same-film search; it ends sooner when a round finds none
REASONS = ("title", "plot_text", "plot_similarity")


def same_films(films: Sequence[Film], others: Sequence[Film],
               vectors: Mapping[str, tuple[np.ndarray, np.ndarray]], via: Sequence[Film] = ()) -> list[str | None]:
    """For each of `films`, how it is one of `others` (the first reason that holds), or None: "title" (films.TitleIndex:
    a title in common and years that agree; with `via`, a catalogue, also a film of it that both are), "plot_text"
    (the same normalised text), "plot_similarity" (at least NEAR_DUPLICATE close in an index part; `vectors[part]`:
    the films' vectors and the others')."""
    titles = TitleIndex(others)
    catalogue = TitleIndex(via)
    named = {i for other in others for i in catalogue.of(other).positions}
    texts = {plot_key(other.plot) for other in others}
    closest = {part: closest_similarity(theirs, mine) for part, (mine, theirs) in vectors.items()} if others else {}
    reasons: list[str | None] = []
    for i, film in enumerate(films):
        if titles.of(film).films or not named.isdisjoint(catalogue.of(film).positions):
            reasons.append("title")
        elif plot_key(film.plot) in texts:
            reasons.append("plot_text")
        elif any(closest[part][i] >= NEAR_DUPLICATE[part] for part in closest):
            reasons.append("plot_similarity")
        else:
            reasons.append(None)
    return reasons


@dataclass(frozen=True)
class Exclusion:
    """The reference films an evaluation takes out, and how many for each reason (a film matched several ways
    counts under the first): its title or one of its other titles, its very plot text, a plot that close, or a
    film the served recognition would take it for (suspected to be the same film: a translated title), found in
    `rounds` (how many each round of the search found; the last found none unless MAX_ROUNDS ended it)."""
    positions: frozenset[int]
    by_title: int
    by_plot_text: int
    by_plot_similarity: int
    by_recognition: int = 0
    rounds: tuple[int, ...] = ()

    @property
    def fixed_point(self) -> bool:
        """No film the served recognition would take a held-out film for is left in the reference."""
        return not self.rounds or self.rounds[-1] == 0

    def counts(self) -> dict:
        return {"total": len(self.positions), "by_title": self.by_title, "by_plot_text": self.by_plot_text,
                "by_plot_similarity": self.by_plot_similarity, "suspected_same_film": self.by_recognition,
                "suspected_rounds": list(self.rounds), "fixed_point": self.fixed_point}


def exclusion(parts: Mapping[str, ReferenceIndex], held_out: Sequence[Film],
              held_out_vectors: Mapping[str, np.ndarray]) -> Exclusion:
    """Every reference film that is one of the held-out films (same_films, in any index part; `held_out_vectors`: the
    held-out plots embedded per part), then every film the served recognition would take a held-out film for on
    either route, in the reference without the films excluded so far (recognition.Recogniser.suspects: every film
    its model scores above the route's threshold, near-ties of a series included), round after round until a round
    finds none: once a film is gone, the next closest may lead the others enough to be taken for it."""
    reference = parts["english"].films
    reasons = same_films(reference, held_out, {part: (parts[part].vectors(), vectors)
                                               for part, vectors in held_out_vectors.items()})
    matched = {i for i, reason in enumerate(reasons) if reason is not None}
    suspected, rounds = suspected_same_films(parts, held_out, held_out_vectors, matched)
    return Exclusion(frozenset(matched | suspected), *(reasons.count(reason) for reason in REASONS), len(suspected),
                     tuple(rounds))


def suspected_same_films(parts: Mapping[str, ReferenceIndex], held_out: Sequence[Film],
                         held_out_vectors: Mapping[str, np.ndarray], excluded: set[int]) -> tuple[set[int], list[int]]:
    """The reference positions the served recognition takes held-out films for once `excluded` (and what it took
    them for in earlier rounds) is gone; how many each round found."""
    found: set[int] = set()
    rounds: list[int] = []
    while len(rounds) < MAX_ROUNDS and (not rounds or rounds[-1]):
        gone = excluded | found
        kept = [i for i in range(len(parts["english"].films)) if i not in gone]
        reduced = {part: index.without(gone) for part, index in parts.items()}
        films = reduced["english"].films  # every part holds the same films in the same order
        recogniser = Recogniser(films)
        positions = {id(film): kept[j] for j, film in enumerate(films)}
        new: set[int] = set()
        for part, vectors in held_out_vectors.items():
            similarities, at = reduced[part].faiss.search(np.ascontiguousarray(vectors, np.float32),
                                                          min(SEARCHED, len(films)))
            for film, row_s, row_i in zip(held_out, similarities, at):
                neighbours = [Neighbour(films[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                new |= {positions[id(f)] for f in recogniser.suspects(film.plot, neighbours, part)}
        rounds.append(len(new))
        found |= new
    return found, rounds
