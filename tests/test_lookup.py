"""mode=lookup: titles, reviews and company names through IMDb (cinemagoer) and TMDb."""

import pytest

from service.genres import DEFAULT
from service.lookup.kinds import detect_kind, parse_title, titles_in_review

from .conftest import make_client, serving_client
from .fake_tmdb import API_KEY, FakeTmdbServer
from .local_server import closed_port_url


@pytest.mark.parametrize("text, kind", [
    ("The Matrix", "title"), ("the matrix (1999)", "title"), ("Matrix 1999", "title"), ("1917", "title"),
    ("Pixar", "company"), ("Warner Bros. Pictures", "company"), ("Studio Ghibli", "company"),
    ("I loved Inception, a mind-bending masterpiece. 9/10", "review"),
    ("Boring and overrated, a waste of time.", "review"),
    ("A young wizard embarks on an adventure to defeat a dark sorcerer.", "description"),
])
def test_what_the_text_is_taken_for(text, kind):
    assert detect_kind(text) == kind


def test_titles_with_and_without_years():
    assert parse_title("the matrix (1999)") == parse_title("the matrix 1999")
    assert (parse_title("Matrix 1999").title, parse_title("Matrix 1999").year) == ("Matrix", 1999)
    assert parse_title("Blade Runner 2049").year is None  # not a year: it has not happened yet
    assert [q.title for q in titles_in_review('Watched "Heat" again. Better than Collateral, I thought.')][:2] == \
        ["Heat", "Collateral"]


@pytest.fixture(scope="module")
def imdb_client(small_index_dir, imdb_db):
    with serving_client(small_index_dir, imdb_db=imdb_db) as client:
        yield client


def lookup(client, text, **body):
    response = client.post("/classify?mode=lookup", json={"description": text, **body})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("text", ["The Matrix", "Matrix", "the matrix (1999)", "Matrix 1999", "THE MATRIX"])
def test_imdb_finds_a_title_despite_cinemagoers_article_and_year_quirks(imdb_client, text):
    body = lookup(imdb_client, text)
    assert body["lookup"]["kind"] == "title" and body["lookup"]["available"]
    assert body["lookup"]["matched"]["title"] == "The Matrix" and body["lookup"]["matched"]["year"] == 1999
    assert body["lookup"]["matched"]["imdb_id"].startswith("tt") and body["lookup"]["matched"]["rating"] == 8.7
    assert body["lookup"]["known_genres"]["imdb"] == ["Action", "Sci-Fi"]
    assert body["genres"][:2] == ["Action", "Sci-Fi"] and "imdb" in body["genre_sources"]["Sci-Fi"]
    assert set(body["genres"]) <= set(DEFAULT.names)


def test_the_quirks_are_cinemagoers(imdb_db):
    from imdb import Cinemagoer

    ia = Cinemagoer("s3", f"sqlite:///{imdb_db}")
    assert not [m for m in ia.search_movie("Matrix") if m["title"] == "The Matrix"]
    assert not ia.get_movie("0000001").get("title")  # a missing id: an almost empty movie, no error


def test_imdb_english_title_through_akas_and_plot_from_the_reference(imdb_client):
    body = lookup(imdb_client, "The Dark Knight")
    assert body["lookup"]["known_genres"]["imdb"] == ["Action", "Crime", "Drama"]
    assert body["lookup"]["plot_source"] == "reference"  # IMDb has no plots; the index has this film's
    assert body["genres"][:3] == ["Action", "Crime", "Drama"]  # IMDb's genres first, then the others
    assert all(body["genre_sources"][g][0] == "imdb" for g in body["genres"][:3])
    assert body["lookup"]["known_genres"]["reference"] == ["Drama", "Action", "Crime", "Thriller"]
    assert body["genre_sources"]["Thriller"][0] == "reference"
    assert all(set(body["genre_sources"][g]) <= {"reference", "predicted"} for g in body["genres"][3:])
    spirited = lookup(imdb_client, "Spirited Away")
    assert spirited["lookup"]["matched"]["year"] == 2001 and "Animation" in spirited["genres"]


def test_a_review_is_classified_and_the_film_it_names_looked_up(imdb_client):
    body = lookup(imdb_client, "I loved Inception, a mind-bending ride. 9/10")
    assert body["lookup"]["kind"] == "review" and body["lookup"]["matched"]["title"] == "Inception"
    assert body["genres"][:3] == ["Action", "Adventure", "Sci-Fi"]


def test_unknown_title_says_nothing_was_found(imdb_client):
    body = lookup(imdb_client, "Zzyzx Qwerty")
    assert body["lookup"]["matched"] is None and body["lookup"]["available"]
    assert any("no film found" in n for n in body["lookup"]["notes"])
    assert body["genres"] and set(body["genres"]) <= set(DEFAULT.names)


def tmdb_client(small_index_dir, url, **settings):
    return make_client(small_index_dir, tmdb_api_key=API_KEY, tmdb_base_url=url, **settings)


def test_tmdb_title_gives_overview_and_genres(small_index_dir):
    with FakeTmdbServer() as tmdb:
        body = lookup(tmdb_client(small_index_dir, tmdb.url), "Toy Story (1995)")
    found = body["lookup"]
    assert found["matched"]["tmdb_id"] == 862 and found["matched"]["year"] == 1995
    assert found["known_genres"]["tmdb"] == ["Animation", "Comedy", "Family"]
    assert found["plot_source"] == "tmdb"
    assert {q.get("api_key") for q in tmdb.queries} == {API_KEY}
    assert [path for _, path, _ in tmdb.requests] == ["/3/search/movie", "/3/movie/862"]
    assert tmdb.queries[0]["year"] == "1995"


def test_tmdb_company_gives_its_catalogues_genres(small_index_dir):
    with FakeTmdbServer() as tmdb:
        body = lookup(tmdb_client(small_index_dir, tmdb.url), "Pixar Animation Studios")
    company = body["lookup"]["company"]
    assert body["lookup"]["kind"] == "company" and company["tmdb_id"] == 3 and company["films"] == 16
    assert company["genre_shares"]["Animation"] == 1.0
    assert body["genres"][:2] == ["Animation", "Family"] and body["genre_sources"]["Animation"][0] == "tmdb"


def test_tmdb_review_mentioning_a_title(small_index_dir):
    with FakeTmdbServer() as tmdb:
        body = lookup(tmdb_client(small_index_dir, tmdb.url), 'My kids adored "Up" and so did I.')
    assert body["lookup"]["kind"] == "review" and body["lookup"]["matched"]["tmdb_id"] == 14160


def test_lookups_are_cached(small_index_dir):
    with FakeTmdbServer() as tmdb:
        client = tmdb_client(small_index_dir, tmdb.url)
        first = lookup(client, "Toy Story")
        asked = len(tmdb.requests)
        assert lookup(client, "toy  story")["lookup"] == first["lookup"]
        assert len(tmdb.requests) == asked


def test_refused_tmdb_falls_back_to_the_text(small_index_dir):
    body = lookup(tmdb_client(small_index_dir, closed_port_url()), "Toy Story")
    assert body["lookup"]["available"] is False and "unreachable" in " ".join(body["lookup"]["notes"])
    assert body["genres"] and set(body["genres"]) <= set(DEFAULT.names)


def test_hanging_tmdb_is_abandoned_within_its_timeout(small_index_dir):
    with FakeTmdbServer(hang_s=10) as tmdb:
        client = tmdb_client(small_index_dir, tmdb.url, lookup_timeout=1.0)
        body = lookup(client, "Toy Story")
        answered_by_then = list(tmdb.answered)
    assert "did not answer within 1 s" in " ".join(body["lookup"]["notes"]) and answered_by_then == []


@pytest.mark.parametrize("text, kind", [
    ("The Matrix", "title"), ("I loved Inception, a mind-bending ride. 9/10", "review"), ("Pixar", "company"),
])
def test_with_neither_database_nor_key_every_kind_still_answers(client, text, kind):
    body = lookup(client, text)
    assert body["lookup"]["kind"] == kind and body["lookup"]["available"] is False
    assert body["lookup"]["notes"] and body["genres"] and set(body["genres"]) <= set(DEFAULT.names)


def test_without_databases_a_title_the_index_knows_is_classified_by_its_plot(client):
    body = lookup(client, "avatar (2009)")
    assert body["lookup"]["available"] is False and body["lookup"]["plot_source"] == "reference"
    assert body["lookup"]["matched"]["title"] == "Avatar" and body["lookup"]["matched"]["imdb_id"] is None
    assert {"Sci-Fi", "Action", "Adventure"} & set(body["genres"])


def test_kind_can_be_forced(client):
    assert lookup(client, "Heat", kind="description")["lookup"]["kind"] == "description"
    response = client.post("/classify?mode=lookup", json={"description": "Heat", "kind": "poem"})
    assert response.status_code == 422


def test_a_damaged_imdb_database_is_a_note_not_an_error(small_index_dir, tmp_path):
    broken = tmp_path / "imdb.db"
    broken.write_bytes(b"this is not a SQLite database" * 100)
    body = lookup(make_client(small_index_dir, imdb_db=broken), "The Matrix")
    assert body["genres"] and body["lookup"]["available"] is False
    assert any("is not a cinemagoer database" in note for note in body["lookup"]["notes"])


class OddTmdbServer(FakeTmdbServer):
    """Answers JSON, but not in TMDb's shape."""

    def respond(self, method, path, query, body):
        return 200, {"results": [{"title": None, "genre_ids": "x"}]}


def test_tmdb_answering_an_unexpected_shape_is_a_failed_lookup_not_an_error(small_index_dir):
    with OddTmdbServer() as tmdb:
        body = lookup(tmdb_client(small_index_dir, tmdb.url), "Toy Story")
    assert "unexpected shape" in " ".join(body["lookup"]["notes"]) and body["genres"]


@pytest.fixture(scope="module")
def large_imdb_db(tmp_path_factory):
    """The sample database with two million more alternative titles: large enough that cinemagoer's
    LIKE '%…%' scan of title_akas (a title with no ASCII letters has no soundex code) takes seconds."""
    import sqlite3

    from .imdb_sample import build_database

    path = build_database(tmp_path_factory.mktemp("large-imdb"))
    with sqlite3.connect(path) as db:
        db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000)
                      INSERT INTO title_akas (titleId, ordering, title, t_soundex)
                      SELECT 'tt9000001', i + 10, 'Filler title number ' || i, 'F436' FROM n""")
    return path


def test_an_imdb_lookup_that_scans_the_whole_database_stops_at_its_deadline(large_imdb_db):
    from service.lookup.imdb import ImdbSource, ImdbUnavailable
    from service.lookup.kinds import TitleQuery

    cjk = TitleQuery("千と千尋の神隠し", None)
    assert ImdbSource(large_imdb_db, timeout_s=60).find(cjk) is None  # the whole scan, to its end: not found
    with pytest.raises(ImdbUnavailable, match="did not answer within 0.1 s"):  # stopped midway
        ImdbSource(large_imdb_db, timeout_s=0.1).find(cjk)


def test_a_timed_out_imdb_lookup_is_a_note_and_is_not_cached(small_index_dir, large_imdb_db):
    client = make_client(small_index_dir, imdb_db=large_imdb_db, lookup_timeout=0.1)
    for _ in range(2):  # the second asks again: a failure is not cached
        body = lookup(client, "千と千尋の神隠し", kind="title")
        assert "IMDb lookup failed: IMDb did not answer within 0.1 s" in body["lookup"]["notes"]
    assert body["genres"] and body["lookup"]["available"] is False


def test_cinemagoer_seam_every_query_goes_through_our_read_only_connection(imdb_db):
    """imdb.py replaces cinemagoer's private `_adapter` and overrides `SQLiteAdapter._connect`: this breaks
    loudly if a cinemagoer release stops routing queries through them."""
    import sqlite3

    from imdb.parser.s3.adapters import SQLiteAdapter

    from service.lookup.imdb import ImdbSource
    from service.lookup.kinds import TitleQuery

    source = ImdbSource(imdb_db)
    adapter = source.ia._adapter
    assert isinstance(adapter, SQLiteAdapter)
    opened = []
    connect = adapter._connect
    adapter._connect = lambda: opened.append(connect()) or opened[-1]
    assert source.find(TitleQuery("Heat", 1995)).genres == ("Crime", "Drama", "Thriller")
    assert opened, "cinemagoer no longer opens its connections through SQLiteAdapter._connect"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connect().execute("DELETE FROM title_basics")


class WrongTypesTmdbServer(FakeTmdbServer):
    """TMDb's shape with values of the wrong type: ids that are not integers."""

    def __init__(self, bad_id):
        super().__init__()
        self.bad_id = bad_id

    def respond(self, method, path, query, body):
        status, data = super().respond(method, path, query, body)
        for result in data.get("results", []) if isinstance(data, dict) else []:
            result["id"] = self.bad_id
        return status, data


@pytest.mark.parametrize("bad_id", ["abc", 862.5, None, [862]])
def test_tmdb_values_of_the_wrong_type_are_a_failed_lookup_and_not_cached(small_index_dir, bad_id):
    with WrongTypesTmdbServer(bad_id) as tmdb:
        client = tmdb_client(small_index_dir, tmdb.url)
        for attempt in (1, 2):
            response = client.post("/classify?mode=lookup", json={"description": "Toy Story"})
            assert response.status_code == 200 and response.json()["genres"]
            notes = response.json()["lookup"]["notes"]
            assert any("TMDb answered an unexpected shape (results.0.id" in note for note in notes)
            assert len(tmdb.requests) == attempt  # asked again: a failure is not cached
