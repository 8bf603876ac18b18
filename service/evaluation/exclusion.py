"""Keeping evaluation honest: the evaluation films are removed from the reference before they are scored as unseen
— by title (their own or another), by their very plot, by a plot that close, and under every reference film the
served recognition would take them for ("suspected same film"). Knobs are tuned on splits of the reference and the
dev files' calibration halves (scoring/splits.py), never on what is evaluated."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.corpus import Film, plot_key
from service.films import TitleIndex
from service.recognition import Recogniser
from service.store import Neighbour, ReferenceIndex

# A reference plot this close to a held-out plot (inner product of normalised vectors, by index part) is the same
# film told again: excluded too. Chosen on dev-eval/n_movies.csv, never on an evaluation file: IMDb's descriptions of
# 1,099 films the reference holds (same title and year) against 4,258 it does not. MiniLM at 0.80 finds 36% of the
# former (same film, other words) and a reference plot so close for 1.2% of the latter (some of them the same film
# under another title). e5's similarities are compressed: 0.95 leaves 1.0% of the latter. A German or French plot
# and its film's English one are 0.86 apart in e5 (median), as close as other films: no threshold tells them.
NEAR_DUPLICATE = {"english": 0.80, "multilingual": 0.95}
NEAR_DUPLICATES_PER_FILM = 20  # searched per held-out plot


@dataclass(frozen=True)
class Exclusion:
    """The reference films an evaluation takes out, and how many for each reason (a film matched several ways
    counts under the first): its title or one of its other titles, its very plot text, a plot that close, or a
    film the served recognition would take it for (suspected to be the same film: a translated title)."""
    positions: frozenset[int]
    by_title: int
    by_plot_text: int
    by_plot_similarity: int
    by_recognition: int = 0

    def counts(self) -> dict[str, int]:
        return {"total": len(self.positions), "by_title": self.by_title, "by_plot_text": self.by_plot_text,
                "by_plot_similarity": self.by_plot_similarity, "suspected_same_film": self.by_recognition}


def exclusion(parts: Mapping[str, ReferenceIndex], held_out: Sequence[Film],
              held_out_vectors: Mapping[str, np.ndarray]) -> Exclusion:
    """Every reference film that is one of the held-out films: by title and year, by plot text, by a plot at
    least NEAR_DUPLICATE close in any index part (`held_out_vectors`: the held-out plots embedded per part), or
    taken for it by the served recognition on either route (every film its model scores above the route's
    threshold, near-ties of a series included: recognition.Recogniser.suspects)."""
    reference = parts["english"].films
    by_title = matching_positions(reference, held_out)
    texts = {plot_key(film.plot) for film in held_out}
    by_text = {i for i, film in enumerate(reference) if plot_key(film.plot) in texts} - by_title
    close, suspected = set(), set()
    recogniser = Recogniser(reference)
    positions = {id(film): i for i, film in enumerate(reference)}
    for part, vectors in held_out_vectors.items():
        k = min(NEAR_DUPLICATES_PER_FILM, len(reference))
        similarities, found = parts[part].faiss.search(np.ascontiguousarray(vectors, np.float32), k)
        close |= {int(i) for i in found[similarities >= NEAR_DUPLICATE[part]] if i >= 0}
        for film, row_s, row_i in zip(held_out, similarities, found):
            neighbours = [Neighbour(reference[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            suspected |= {positions[id(f)] for f in recogniser.suspects(film.plot, neighbours, part)}
    close -= by_title | by_text
    suspected -= by_title | by_text | close
    return Exclusion(frozenset(by_title | by_text | close | suspected), len(by_title), len(by_text), len(close),
                     len(suspected))


def matching_positions(reference: Sequence[Film], held_out: Sequence[Film]) -> set[int]:
    """Positions of reference films that are one of the held-out films (films.TitleIndex: a title in common, the
    reference film's own or one of its other titles, and years that agree): a French film held out under its
    French title."""
    titles = TitleIndex(reference)
    return {i for film in held_out for i in titles.of(film).positions}
