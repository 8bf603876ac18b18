"""Anything a person knows about a film, with no keys: auto mode, titles and companies answered from the
reference, known films recognised, and a confidence signal that flags text that reads like no film."""
import json

import pytest

from service.corpus import read_file

from .conftest import REFERENCE, served_settings, serving_client, tmdb_rows, write_generic_csv

COMPANIES = ("A24", "Studio Ghibli", "Pixar Animation Studios")
NON_FILM_TEXTS = [
    "What time does the pharmacy on Main Street close on Sundays?",
    "Whisk three eggs with sugar, fold in the flour and bake for 25 minutes at 180 degrees.",
    "Parliament passed the pension reform bill by a narrow margin on Tuesday.",
    "for i in range(10):\n    print(i * i)",
    "Reminder: the quarterly tax return is due by the end of the month.",
    "How many grams of protein should an adult eat per day?",
    "Chop two onions, fry them in olive oil until golden, then add the tomatoes.",
    "The airline cancelled 40 flights because of the strike at the airport.",
    "SELECT name, email FROM customers WHERE signup_date > '2024-01-01';",
    "Please restart your router and check that the green light is on.",
]


def _companies_rows() -> list[dict]:
    """Real TMDB 5000 rows of the three companies' films, both Titanics and 100 other films."""
    rows = {row["title"]: row for row in tmdb_rows(0, 4800)}
    picked = [row for row in rows.values() if set(row["companies"].split("|")) & set(COMPANIES)]
    titanic_1953 = next(r for r in read_file("mymoviedb", REFERENCE / "mymoviedb.csv")
                        if r.title == "Titanic" and r.year == 1953)
    picked.append({"title": "Titanic", "year": 1953, "plot": titanic_1953.plot,
                   "genres": ", ".join(titanic_1953.labels), "companies": ""})
    picked.append(rows["Titanic"])
    return picked + [row for row in tmdb_rows(0, 120) if row not in picked][:100]


@pytest.fixture(scope="module")
def any_client(tmp_path_factory):
    from service.build import build_index

    folder = tmp_path_factory.mktemp("any-input")
    corpus = write_generic_csv(folder / "films.csv", _companies_rows())
    build_index(corpus, folder / "index", served_settings(), progress=False)
    with serving_client(folder / "index", multilingual_model="") as client:
        yield client


def auto(client, text: str) -> dict:
    response = client.post("/classify?mode=auto&explain=true", json={"description": text})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("text, kind", [
    ("Titanic", "title"), ("Studio Ghibli", "company"), ("I loved Up, a moving film. 9/10", "review"),
    ("A young wizard embarks on an adventure to defeat a dark sorcerer.", "description")])
def test_auto_mode_takes_each_kind_of_text_for_what_it_is(any_client, text, kind):
    assert auto(any_client, text)["lookup"]["kind"] == kind


@pytest.mark.parametrize("company, expected", [
    ("A24", {"Drama"}), ("Studio Ghibli", {"Animation", "Fantasy"}),
    ("Pixar Animation Studios", {"Animation", "Family"}), ("Pixar", {"Animation", "Family"})])
def test_a_company_gets_its_films_genres_offline(any_client, company, expected):
    body = auto(any_client, company)
    found = body["lookup"]["company"]
    assert found["source"] == "reference" and found["films"] >= 4 and found["titles"]
    assert expected <= set(body["genres"]) and body["genres"] == body["lookup"]["known_genres"]["reference"]
    assert all(body["genre_sources"][g] == ["reference"] for g in body["genres"])
    assert body["lookup"]["available"] is False  # no database was asked: the reference alone answered


def test_studio_ghiblis_films_are_listed(any_client):
    titles = auto(any_client, "Studio Ghibli")["lookup"]["company"]["titles"]
    assert set(titles) == {"Ponyo (2008)", "Howl's Moving Castle (2004)", "Princess Mononoke (1997)",
                           "Spirited Away (2001)"}


def test_a_title_answers_with_the_reference_labels_of_the_newest_film_and_lists_the_others(any_client):
    body = auto(any_client, "Titanic")
    assert body["lookup"]["matched"]["year"] == 1997
    assert body["genres"][:3] == ["Drama", "Romance", "Thriller"]
    assert body["genre_sources"]["Romance"][0] == "reference"
    assert body["lookup"]["candidates"] == [{"title": "Titanic", "year": 1953, "genres": ["Drama", "Romance"]}]


def test_a_year_picks_the_film_of_that_year(any_client):
    body = auto(any_client, "Titanic 1953")
    assert body["lookup"]["matched"]["year"] == 1953 and body["genres"][:2] == ["Drama", "Romance"]
    assert [c["year"] for c in body["lookup"]["candidates"]] == [1997]


def test_a_description_of_a_known_film_is_recognised_and_leads_with_its_labels(any_client):
    description = ("Rose DeWitt Bukater, now 101 years old, tells treasure hunters how she fell in love with Jack "
                   "Dawson aboard the Titanic on its maiden voyage in 1912.")
    body = auto(any_client, description)
    assert body["recognised"]["title"] == "Titanic" and body["recognised"]["year"] == 1997
    assert body["genres"][:3] == ["Drama", "Romance", "Thriller"]


def test_a_description_of_no_film_of_the_reference_is_not_recognised(any_client):
    body = auto(any_client, "A retired boxer coaches a deaf teenager for a regional chess championship.")
    assert body["recognised"] is None
    # IMDb's one line on Titanic is too far from the reference's plot (0.54) to be taken for it
    imdb = ("A seventeen-year-old aristocrat falls in love with a kind but poor artist aboard the luxurious, "
            "ill-fated R.M.S. Titanic.")
    assert auto(any_client, imdb)["recognised"] is None


def test_text_that_reads_like_no_film_is_low_and_real_plots_are_not(client):
    for text in NON_FILM_TEXTS:
        body = client.post("/classify", json={"description": text}).json()
        assert body["confidence"] == "low", (text, body["confidence_reason"])
        assert "reads like no film" in body["confidence_reason"]
    held_out = [row["plot"] for row in tmdb_rows(300, 200)]  # not in the index
    results = client.post("/classify/batch", json={"descriptions": held_out[:64]}).json()["results"]
    for start in (64, 128):
        results += client.post("/classify/batch", json={"descriptions": held_out[start:start + 64]}).json()["results"]
    low = sum(r["confidence"] == "low" for r in results)
    assert len(results) == 192 and low <= 0.05 * len(results)


def test_every_answer_says_how_confident_it_is(client):
    body = client.post("/classify", json={"description": "A young wizard embarks on an adventure."}).json()
    assert body["confidence"] in {"high", "medium", "low"} and body["confidence_reason"]
    assert json.dumps(body)
