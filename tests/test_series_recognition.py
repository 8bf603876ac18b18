"""Recognition and series: a sequel described in new words is never taken for another film of its series; a text
surely of a series but of none of its films surely is answered with what the series' films share, naming none; the
evaluation's suspected-same-film exclusion runs until the served recognition takes a held-out film for nothing left."""
import numpy as np
import pytest

from service.corpus import Film
from service.evidence import FEATURES
from service.recognition import Model

from .conftest import make_client, tmdb_rows

# sequels the small reference holds (its first 300 TMDB films), with the films of their series, told in new words
SEQUELS = {
    "Spider-Man 2": "Peter Parker is failing at college and losing every job while he fights crime at night, and "
                    "his powers start to fade. A scientist, Otto Octavius, survives a failed fusion experiment with "
                    "four metal arms fused to his spine and robs banks to build his machine again.",
    "Iron Man 2": "Tony Stark has told the world he is the man in the armour, and a senate committee wants his suits. "
                  "The device that keeps him alive is poisoning him, while Ivan Vanko, a Russian physicist with a "
                  "grudge against his family, builds whips of light and joins the arms dealer Justin Hammer.",
    "Kung Fu Panda 2": "Po is now the Dragon Warrior and guards the Valley of Peace with the Furious Five, but the "
                       "peacock Lord Shen has built a weapon that breathes fire and could end kung fu. To stop him Po "
                       "must face what happened to his parents when he was a baby.",
    "Men in Black II": "Agent J has to bring his old partner K back to the agency after the alien Serleena comes to "
                       "Earth disguised as a lingerie model to seize the Light of Zartha. K has been neuralyzed and "
                       "sorts letters at a post office with no memory of his past.",
    "Terminator 3: Rise of the Machines": "John Connor lives off the grid when a new killer from the future, a "
                                          "female machine, comes for him and his future wife Kate Brewster; an "
                                          "older T-800 protects them while Skynet takes over the military's "
                                          "computers and the bombs begin to fall.",
    "How to Train Your Dragon 2": "Five years after Berk made peace with the dragons, Hiccup and Toothless explore "
                                  "new lands and find a secret ice cave where his long-lost mother Valka cares for "
                                  "wild dragons, while the warlord Drago Bloodvist builds an army to take them all.",
    "Stuart Little 2": "The little white mouse now goes to school and plays soccer, but feels lonely when his "
                       "brother George makes new friends. He takes in a small yellow bird, Margalo, who is hunted "
                       "by a falcon, and when she disappears he and the cat Snowbell set off across New York to "
                       "find her.",
    "Night at the Museum: Battle of the Smithsonian": "Larry Daley has become a businessman, and his friends from "
                                                      "the museum are packed off to the archives of the "
                                                      "Smithsonian in Washington, where the pharaoh Kahmunrah "
                                                      "wakes with them; Larry teams up with the pilot Amelia "
                                                      "Earhart to rescue them.",
}


@pytest.fixture(scope="module")
def answers(small_index_dir):
    client = make_client(small_index_dir)
    return client.post("/classify/batch", json={"descriptions": list(SEQUELS.values())}).json()["results"]


def test_a_sequel_told_in_new_words_is_never_taken_for_another_film_of_its_series(answers):
    from service.series import Series, one_series

    catalogue = Series(row["title"] for row in tmdb_rows(0, 300))
    taken = {title: a["recognised"] for title, a in zip(SEQUELS, answers) if a["recognised"]}
    films = {title: r for title, r in taken.items() if r["source"] == "reference"}
    assert all(r["title"] == title for title, r in films.items()), films
    for title, r in taken.items():
        if r["source"] == "series":  # a series answer names no film: all the series' films, their shared genres
            assert any(f["title"] == title for f in r["series"]) and r["year"] is None
            assert all(one_series(catalogue.position(title), catalogue.position(f["title"])) for f in r["series"])


def test_a_text_surely_of_a_series_but_of_none_of_its_films_is_answered_with_what_they_share(small_index_dir):
    client = make_client(small_index_dir)
    # a model under which films of one series within 5 of each other tie: the text is surely of the series
    model = Model((10.0,) + (0.0,) * (len(FEATURES) - 1), -9.0, 0.0, 5.0)
    client.app.state.runtime.classifier.recogniser.models = {"english": model}
    spider_man = {row["title"]: row for row in tmdb_rows(0, 300)}["Spider-Man 2"]
    body = client.post("/classify", json={"description": spider_man["plot"]}).json()
    recognised = body["recognised"]
    assert recognised["source"] == "series" and recognised["year"] is None
    assert recognised["title"] == "Spider-Man (series)"
    genres = {f["title"]: set(row["genres"].split(", ")) for row in tmdb_rows(0, 300)
              for f in recognised["series"] if f["title"] == row["title"]}
    assert "Spider-Man 2" in genres and len(genres) >= 2
    shared = set.intersection(*genres.values())
    assert set(recognised["genres"]) == shared and body["genres"] == recognised["genres"]
    assert recognised["genres"] == [g for g in body["scores"] if g in shared]  # leading the scores, in order


def _films_at(similarities: list[float]) -> tuple[list[Film], np.ndarray, np.ndarray]:
    """Films whose vectors are exactly `similarities` close to one held-out vector (each with its own direction)."""
    n = len(similarities)
    vectors = np.zeros((n, n + 1), np.float32)
    for i, s in enumerate(similarities):
        vectors[i, 0], vectors[i, i + 1] = s, np.sqrt(1 - s * s)
    held_out = np.zeros((1, n + 1), np.float32)
    held_out[0, 0] = 1.0
    films = [Film(f"Film number {chr(65 + i)}", 2000 + i, f"a quiet story {i}", ("Drama",), "test") for i in range(n)]
    return films, vectors, held_out


def test_the_suspected_same_film_exclusion_runs_until_no_film_is_taken_for_a_held_out_one(monkeypatch):
    from service.evaluation.exclusion import exclusion
    from service.recognition import Recogniser
    from service.store import Neighbour, ReferenceIndex

    # a film is taken for the description when its similarity and its lead over the next add up to 0.79
    weights = (1.0, 1.0) + (0.0,) * (len(FEATURES) - 2)
    monkeypatch.setattr("service.recognition.load_models", lambda *args: {"english": Model(weights, 0.0, 0.79, 0.0)})
    films, vectors, held_out_vector = _films_at([0.75, 0.70, 0.30, 0.10])
    held_out = [Film("Another Story", 1990, "A new text of its own.", ("Drama",), "eval")]
    excluded = exclusion({"english": ReferenceIndex(films, vectors)}, held_out, {"english": held_out_vector})
    # A leads B by 0.05 (0.80): taken. Without A, B leads C by 0.40: taken too. Without both, C (0.50) is not.
    assert sorted(films[i].title for i in excluded.positions) == ["Film number A", "Film number B"]
    assert excluded.by_recognition == 2 and excluded.counts()["suspected_rounds"] == [1, 1, 0]
    left = [films[i] for i in range(len(films)) if i not in excluded.positions]
    neighbours = [Neighbour(f, s) for f, s in zip(left, (0.30, 0.10))]
    assert Recogniser(left).recognise(held_out[0].plot, neighbours, "english") is None


def test_a_text_is_surely_of_a_series_when_its_films_together_reach_the_threshold_none_alone():
    from service.evidence import Candidate
    from service.recognition import decide, series_score

    def candidate(title, siblings, contradicted=False):
        return Candidate(Film(title, None, "", ("Drama",), "test"), 0.7, (), siblings, contradicted)

    part_two, first, part_three, other = (candidate("The Godfather Part II", (1, 2)),
                                          candidate("The Godfather", (0, 2)),
                                          candidate("The Godfather: Part III", (0, 1), contradicted=True),
                                          candidate("The Funeral", ()))
    scored = [(-1.0, part_two), (-2.4, first), (float("-inf"), part_three), (-6.0, other)]
    assert -1.0 < series_score([-1.0, -2.4]) < -0.5  # 0.27 + 0.08: more likely one of the two than either
    assert decide(scored, -0.75, 3.0) == (part_two, [first])  # the series, without the film the text contradicts
    assert decide(scored, -0.5, 3.0) is None  # not sure of the series either
    assert decide(scored, -1.0, 1.0) == (part_two, [])  # sure of the film: its sibling trails by more than 1
    assert decide([(-1.0, other)], -0.75, 3.0) is None  # a film of no series is never answered as one


def test_a_film_likely_but_not_surely_described_leans_the_answer_on_its_labels(small_index_dir):
    client = make_client(small_index_dir)
    # a model that gives the closest film a third of a chance and never reaches its threshold
    weights = (0.0,) * len(FEATURES)
    closest = Model(weights, -0.7, 5.0, 3.0)
    text = "A lone gunslinger rides into a dusty frontier town and cleans it up."
    plain = client.post("/classify", json={"description": text}).json()
    client.app.state.runtime.classifier.recogniser.models = {"english": closest}
    leaning = client.post("/classify", json={"description": text}, params={"explain": "true"}).json()
    assert plain["recognised"] is None and leaning["recognised"] is None  # no film named
    # ten close films a third likely each: more than certain together, so each counts a tenth and the vote nothing
    neighbours = leaning["neighbours"][:10]
    for genre, score in leaning["scores"].items():
        assert score == pytest.approx(sum(genre in n["genres"] for n in neighbours) / 10, abs=1e-3)
    assert leaning["scores"] != plain["scores"]


def test_the_expected_genres_weigh_each_close_film_by_its_probability_and_the_vote_by_what_is_left():
    from service.recognition import expected

    western, drama = (Film("A Western", 1950, "", ("Western", "Action"), "test"),
                      Film("A Drama", 1990, "", ("Drama",), "test"))
    scores = expected({"Drama": 0.6, "Comedy": 0.2}, [(western, 0.4), (drama, 0.05)])
    assert scores == pytest.approx({"Western": 0.4, "Action": 0.4, "Drama": 0.55 * 0.6 + 0.05, "Comedy": 0.55 * 0.2})
    assert list(scores)[:2] == ["Western", "Action"]  # highest first
    assert expected({"Drama": 0.6}, [(western, 0.9), (drama, 0.6)]) == pytest.approx(
        {"Western": 0.6, "Action": 0.6, "Drama": 0.4})  # together more than sure: their shares, the vote nothing
