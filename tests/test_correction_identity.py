"""A correction changes exactly the film the editor meant, now and after the next build; the newest correction of
a film is the one that counts; anonymous corrections wait for an editor; the store and the side index are bounded
and a change costs what it changes."""
import pytest
from fastapi.testclient import TestClient

from service.build import build_index
from service.corpus import Film
from service.corrections import CorrectionStore, Corrections, store_path
from service.loading import load_classifier
from service.settings import Settings
from service.store import Neighbour

from .conftest import copy_index, make_client, tmdb_rows, write_generic_csv

ALICE = {"X-API-Key": "s3cret-alice"}
EDITORS = "alice:s3cret-alice"
YEARS = (1978, 2007, 2018)
STORY = ("A retired lighthouse keeper teaches a flock of orphaned geese to fly south by leading them in his "
         "homemade glider. Along the coast he meets a travelling circus whose acrobats help him finish the journey.")
FIRST_SENTENCE = STORY.split(". ")[0] + "."


@pytest.fixture(scope="module")
def remakes(tmp_path_factory, embedder):
    """A reference of 60 real films where three are one title of three years (as Halloween 1978, 2007 and
    2018 are in the real one), each with its own plot; and the corpus it was built from."""
    rows = tmdb_rows(0, 60)
    for row, year in zip(rows[10:13], YEARS):
        row["title"], row["year"] = "Halloween", str(year)
    folder = tmp_path_factory.mktemp("remakes")
    corpus = write_generic_csv(folder / "films.csv", rows)
    build_index(corpus, folder / "index", _settings(folder / "index"), progress=False)
    return folder / "index", corpus, {year: row for year, row in zip(YEARS, rows[10:13])}, rows


def _settings(index_dir, **extra):
    return Settings(index_dir=index_dir, llm_backend="none", multilingual_model="", **extra)


@pytest.fixture
def index_dir(remakes, tmp_path):
    return copy_index(remakes[0], tmp_path / "index")


def _genres(client, text, **params):
    response = client.post("/classify", params=params, json={"description": text})
    assert response.status_code == 200, response.text
    return response.json()["genres"]


def test_a_title_of_several_films_without_a_year_is_a_409_listing_them_and_stores_nothing(index_dir, remakes):
    client = make_client(index_dir, feedback_token=EDITORS, multilingual_model="")
    for body in ({"text": "Halloween", "genres": ["Western"]},
                 {"text": STORY, "title": "halloween", "genres": ["Western"]},
                 {"text": "Halloween 1999", "genres": ["Western"]}):  # a year none of them has
        refused = client.post("/feedback", headers=ALICE, json=body)
        assert refused.status_code == 409 and "year" in refused.json()["error"]
        assert refused.json()["candidates"] == [{"title": "Halloween", "year": y} for y in YEARS]
    assert client.get("/feedback", headers=ALICE).json()["total"] == 0


@pytest.mark.parametrize("body", [{"text": "Halloween", "year": 2007}, {"text": "Halloween (2007)"},
                                  {"description": "halloween 2007"}])
def test_a_title_and_year_correct_that_film_alone_as_served_and_as_the_next_build_folds_it(index_dir, remakes, body):
    _, corpus, films, _ = remakes
    client = make_client(index_dir, feedback_token=EDITORS, multilingual_model="")
    stored = client.post("/feedback", headers=ALICE, json=body | {"genres": ["Western"]})
    assert stored.status_code == 201, stored.text
    assert (stored.json()["title"], stored.json()["year"], stored.json()["status"]) == ("Halloween", 2007, "served")

    def answers(ask):
        return {year: "Western" in ask(films[year]) for year in YEARS}

    served = answers(lambda film: _genres(client, film["plot"]))
    looked_up = answers(lambda film: _genres(client, f"Halloween {film['year']}", mode="lookup"))
    assert served == looked_up == {1978: False, 2007: True, 2018: False}

    report = build_index(corpus, index_dir, _settings(index_dir), progress=False)
    assert report.manifest["summary"]["corrections"]["replaced"] == 1
    rebuilt = load_classifier(_settings(index_dir))
    by_year = {f.year: f for f in rebuilt.index.films if f.title == "Halloween"}
    assert {year: "Western" in by_year[year].genres for year in YEARS} == served  # the build agrees with serving
    assert answers(lambda film: rebuilt.classify(film["plot"]).genres) == served
    rebuilt.close()


def test_a_newer_correction_supersedes_the_older_and_revoking_it_brings_the_older_back(index_dir, remakes):
    _, corpus, _, rows = remakes
    client = make_client(index_dir, feedback_token=EDITORS, multilingual_model="", recognise_films=True)
    first = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": ["Western"]}).json()
    second = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": ["Music", "Family"]}).json()
    # the same story paraphrased: recognised as the film corrected, answered by the newest correction alone
    answer = client.post("/classify", params={"explain": "true"}, json={"description": FIRST_SENTENCE}).json()
    assert answer["recognised"]["correction_id"] == second["id"] and answer["genres"] == ["Music", "Family"]
    assert [n["source"] for n in answer["neighbours"]].count("correction") == 1
    listed = {c["id"]: c["status"] for c in client.get("/feedback", headers=ALICE).json()["corrections"]}
    assert listed == {first["id"]: "superseded", second["id"]: "served"}
    film = rows[30]  # a reference film corrected twice by its title
    for genres in (["Horror"], ["Documentary"]):
        assert client.post("/feedback", headers=ALICE, json={"text": film["title"], "genres": genres}).status_code \
            == 201
    assert _genres(client, film["plot"]) == ["Documentary"]

    report = build_index(corpus, index_dir, _settings(index_dir), progress=False)
    summary = report.manifest["summary"]["corrections"]
    assert (summary["read"], summary["superseded"], summary["replaced"], summary["added"]) == (2, 2, 1, 1)
    rebuilt = load_classifier(_settings(index_dir))
    assert rebuilt.classify(FIRST_SENTENCE).genres == ["Music", "Family"]
    assert rebuilt.classify(film["plot"]).genres == ["Documentary"]
    rebuilt.close()

    assert client.delete(f"/feedback/{second['id']}", headers=ALICE).status_code == 200
    assert _genres(client, FIRST_SENTENCE) == ["Western"]  # the older correction of the story counts again


def test_a_description_that_is_a_reference_plot_corrects_that_film(index_dir, remakes):
    film = remakes[3][40]
    client = make_client(index_dir, feedback_token=EDITORS, multilingual_model="")
    stored = client.post("/feedback", headers=ALICE, json={"text": film["plot"].upper(), "genres": ["Western"]})
    assert (stored.json()["title"], stored.json()["year"]) == (film["title"], int(film["year"]))
    looked_up = client.post("/classify", params={"mode": "lookup"}, json={"description": film["title"]}).json()
    assert looked_up["genres"][:1] == ["Western"] and looked_up["genre_sources"]["Western"][0] == "correction"


def test_anonymous_corrections_wait_for_an_editor_who_approves_or_rejects_them(index_dir):
    client = make_client(index_dir, feedback_token=EDITORS, feedback_page=True, multilingual_model="")
    pending = client.post("/feedback", json={"text": STORY, "genres": ["Western"]})
    rejected = client.post("/feedback", json={"text": "A mime walks across a frozen lake.", "genres": ["Horror"]})
    assert pending.status_code == rejected.status_code == 202 and pending.json()["status"] == "pending"
    assert "Western" not in _genres(client, STORY)
    queue = client.get("/feedback", params={"status": "pending"}, headers=ALICE).json()
    assert [c["id"] for c in queue["corrections"]] == [rejected.json()["id"], pending.json()["id"]]
    approved = client.post(f"/feedback/{pending.json()['id']}/approve", headers=ALICE).json()
    assert (approved["status"], approved["approved_by"]) == ("served", "alice")
    assert _genres(client, STORY) == ["Western"]
    assert client.delete(f"/feedback/{rejected.json()['id']}", headers=ALICE).json()["status"] == "revoked"
    refused = client.post(f"/feedback/{rejected.json()['id']}/approve", headers=ALICE)
    assert refused.status_code == 409 and "revoked" in refused.json()["error"]
    assert client.post("/feedback/999/approve", headers=ALICE).status_code == 404
    assert client.get("/feedback", params={"status": "pending"}, headers=ALICE).json()["total"] == 0


def test_anonymous_corrections_are_limited_per_client_and_by_the_queue(index_dir):
    limited = make_client(index_dir, feedback_page=True, feedback_page_rate_limit="2/hour", multilingual_model="")
    sent = [limited.post("/feedback", json={"text": f"{STORY} {i}", "genres": ["Drama"]}) for i in range(3)]
    assert [r.status_code for r in sent] == [202, 202, 429] and int(sent[2].headers["retry-after"]) > 0
    full = make_client(index_dir, feedback_page=True, max_pending_feedback=4, pending_share=0.25, multilingual_model="")
    clients = [TestClient(full.app, client=(f"198.51.100.{i}", 50000)) for i in range(5)]
    codes = [c.post("/feedback", json={"text": f"{STORY} from {i}", "genres": ["Drama"]}).status_code
             for i, c in enumerate(clients)]
    assert codes == [202, 202, 503, 503, 503]  # two were waiting already, from the first client
    third = clients[4].post("/feedback", json={"text": f"{STORY} 3", "genres": ["Drama"]})
    assert third.status_code == 503 and "waiting for an editor" in third.json()["error"]


def test_the_films_corrected_beside_the_index_are_bounded_and_a_film_corrected_again_is_no_new_one(index_dir):
    client = make_client(index_dir, feedback_token=EDITORS, max_corrections=2, multilingual_model="")
    codes = [client.post("/feedback", headers=ALICE, json={"text": f"{STORY} {i}", "genres": ["Drama"]}).status_code
             for i in range(3)]
    assert codes == [201, 201, 507]
    assert "MOVIEGENRE_MAX_CORRECTIONS" in client.post("/feedback", headers=ALICE, json={
        "text": f"{STORY} 2", "genres": ["Drama"]}).json()["error"]
    # at the bound, a correction of a film already corrected beside the index supersedes the other: no new film
    again = client.post("/feedback", headers=ALICE, json={"text": f"{STORY} 0", "genres": ["War"]})
    assert again.status_code == 201 and again.json()["status"] == "served"
    assert _genres(client, f"{STORY} 0") == ["War"]
    assert client.get("/health").json()["feedback"]["corrections"] == 2


class CountingEmbedder:
    """An embedder that counts the texts it embeds."""

    def __init__(self, real):
        self.real, self.dim, self.texts = real, real.dim, 0

    def embed(self, texts, role="passage"):
        self.texts += len(texts)
        return self.real.embed(texts, role=role)


def test_a_change_embeds_what_it_changes_and_serves_the_same_as_a_side_index_made_at_once(tmp_path, embedder):
    store = CorrectionStore(store_path(tmp_path))
    for i in range(40):
        store.add(f"{STORY} Part {i}.", f"{STORY} Part {i}.", ["Drama"], None, None, "alice")
    counting = CountingEmbedder(embedder)
    corrections = Corrections(store, {"english": counting}, poll_s=0)
    assert counting.texts == 40 and len(corrections) == 40
    for i in range(40, 45):
        corrections.add(f"{STORY} Part {i}.", f"{STORY} Part {i}.", ["War"], None, None, "alice")
    corrections.add(f"{STORY} Part 3.", f"{STORY} Part 3.", ["Music"], None, None, "bob")  # supersedes one
    corrections.revoke(7, "bob")
    assert counting.texts == 46 and len(corrections) == 44  # one text embedded a change, nothing re-embedded
    fresh = Corrections(store, {"english": embedder}, poll_s=0)
    query = embedder.embed([f"{STORY} Part 3."])
    assert _side(corrections, query) == _side(fresh, query)
    assert _side(corrections, query)[0][0] == ("Music",)


def _side(corrections, query):
    neighbours = corrections.beside("english", query, [[]], k=10)[0]
    return [(n.film.genres, round(n.similarity, 5)) for n in neighbours]


def test_a_cyrillic_letter_is_never_folded_as_an_accent():
    from service.films import normalise_title

    assert normalise_title("Война и мир") == "война и мир" != normalise_title("Воина и мир")  # й is not и
    assert normalise_title("Їжак") != normalise_title("Іжак") and normalise_title("Ўсход") != normalise_title("Усход")
    assert normalise_title("Ѓорѓе") == "ѓорѓе"  # a Macedonian letter
    assert normalise_title("Ёлки") == normalise_title("Елки")  # ё is optional in Russian print
    assert normalise_title("За́мок") == normalise_title("Замок")  # a stress mark makes no letter
    assert normalise_title("Amélie") == "amelie" and normalise_title("Ἀθῆναι") == "αθηναι"  # accents fold


def test_a_late_serve_never_undoes_a_revocation_this_process_has_read(tmp_path, embedder):
    """A correction written here, revoked by another process, and that revocation read by this one's poll, all
    before this process got round to serving what it wrote: it stays revoked."""
    corrections = Corrections(CorrectionStore(store_path(tmp_path)), {"english": embedder}, poll_s=0)
    other = CorrectionStore(store_path(tmp_path))
    written = corrections.store.add(STORY, STORY, ["Western"], None, None, "alice")
    other.revoke(written.id, "bob")
    corrections.refresh()
    corrections.serve(written)  # late
    assert len(corrections) == 0
    assert corrections.beside("english", embedder.embed([STORY]), [[]], 5) == [[]]
    corrections.close()
    other.close()


def test_a_stored_correction_is_never_answered_500_and_its_retry_serves_it(index_dir, monkeypatch):
    client = make_client(index_dir, feedback_token=EDITORS, corrections_poll=0)
    corrections = client.app.state.runtime.classifier.corrections
    serve = corrections.serve
    monkeypatch.setattr(corrections, "serve", lambda correction: 1 / 0)  # embedding it here fails after the commit
    body, key = {"text": STORY, "genres": ["Western", "Music"]}, {"Idempotency-Key": "once"}
    stored = client.post("/feedback", headers=ALICE | key, json=body)
    assert stored.status_code == 201 and stored.json()["status"] == "served"
    monkeypatch.setattr(corrections, "serve", serve)
    retried = client.post("/feedback", headers=ALICE | key, json=body)
    assert retried.headers["Idempotent-Replayed"] == "true"
    answer = client.post("/classify", json={"description": STORY}).json()
    assert answer["genres"] == ["Western", "Music"]  # the retry served it, no restart, no poll


def test_the_store_opened_at_start_is_closed_when_the_side_index_fails(index_dir, monkeypatch):
    from service.corrections import side_index

    closed = []
    monkeypatch.setattr(CorrectionStore, "close", lambda store: closed.append(store))

    def failing(self, *args, **kwargs):
        raise RuntimeError("the embedder failed")

    monkeypatch.setattr(side_index.Corrections, "__init__", failing)
    with pytest.raises(RuntimeError):
        load_classifier(_settings(index_dir))
    assert len(closed) == 1


class _FailingOnce:
    """An embedder whose next embedding fails (a damaged model, a memory error), then embeds as the real one."""

    def __init__(self, real):
        self.real, self.dim, self.fail = real, real.dim, False

    def embed(self, texts, role="passage"):
        if self.fail:
            self.fail = False
            raise MemoryError("the embedding failed")
        return self.real.embed(texts, role=role)


def test_a_correction_whose_embedding_failed_is_served_by_the_next_poll_and_shifts_no_other(tmp_path, embedder):
    embedding = _FailingOnce(embedder)
    corrections = Corrections(CorrectionStore(store_path(tmp_path)), {"english": embedding}, poll_s=0)
    first = corrections.store.add(STORY, STORY, ["Western"], None, None, "alice")
    embedding.fail = True
    with pytest.raises(MemoryError):
        corrections.serve(first)  # stored; serving it here failed
    assert len(corrections) == 0
    corrections.refresh()  # the poll
    second = corrections.add("A chess prodigy in Moscow.", "A chess prodigy in Moscow.", ["Drama"], None, None, "bob")
    assert {film: corrections._snapshot.corrections[row].id for film, row in corrections._snapshot.by_film.items()} \
        == {first.film: first.id, second.film: second.id}
    found = corrections.beside("english", embedder.embed([STORY]), [[]], 1)[0][0]
    assert (found.film.correction_id, found.film.genres) == (first.id, ("Western",))
    corrections.close()


def test_a_correction_superseded_by_one_whose_embedding_failed_is_still_served_until_the_next_poll(tmp_path,
                                                                                                   embedder):
    """All of a change or none of it: the newer correction could not be embedded, so the older one stays served, its
    text found as before (its row was zeroed before the embedding that failed)."""
    embedding = _FailingOnce(embedder)
    corrections = Corrections(CorrectionStore(store_path(tmp_path)), {"english": embedding}, poll_s=0)
    first = corrections.add(STORY, STORY, ["Western"], None, None, "alice")
    newer = corrections.store.add(STORY, STORY, ["Music"], None, None, "bob")  # the same film: it supersedes
    embedding.fail = True
    with pytest.raises(MemoryError):
        corrections.serve(newer)
    # the index found a film half as close: only a correction closer than that is taken beside it
    index_found = [[Neighbour(Film("Far Away", 1990, "Another story.", ("Drama",), "reference"), 0.5)]]
    found = corrections.beside("english", embedder.embed([STORY]), index_found, 1)[0]
    assert [getattr(n.film, "correction_id", None) for n in found] == [first.id]
    corrections.refresh()  # the poll makes the change again
    found = corrections.beside("english", embedder.embed([STORY]), index_found, 1)[0]
    assert [(n.film.correction_id, n.film.genres) for n in found] == [(newer.id, ("Music",))]
    corrections.close()
