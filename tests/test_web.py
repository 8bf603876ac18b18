"""The page at /, driven in a real headless Chromium (Debian's, installed by `make browser`)."""
import httpx
import pytest
from playwright.sync_api import sync_playwright

from service.api.app import create_app

from .conftest import PROJECT_ROOT, make_classifier, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def server_url(small_index_dir, imdb_db):
    classifier = make_classifier(small_index_dir, imdb_db=imdb_db)
    app = create_app(classifier.settings, classifier)
    with serve_in_thread(app) as url:
        yield url
    app.state.runtime.retire()


@pytest.fixture(scope="module")
def page(server_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 900})  # a phone-width screen
        page.goto(server_url)
        yield page
        browser.close()


def test_description_gives_genre_chips_and_grounding_films(page):
    page.locator("#text").fill("A young wizard embarks on an adventure to defeat a dark sorcerer.")
    page.get_by_role("button", name="Find genres").click()
    chips = page.locator("#chips .chip .name")
    chips.first.wait_for()
    genres = chips.all_inner_texts()
    assert {"Fantasy", "Adventure"} & set(genres)
    assert page.locator("#neighbours tbody tr").count() == 25
    assert "neighbour vote" in page.locator("#meta").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-description.png"), full_page=True)


def test_a_description_in_another_language_shows_the_language_read(page):
    russian = "Молодой волшебник отправляется в путешествие, чтобы победить тёмного колдуна."
    page.locator("#text").fill(russian)
    page.get_by_role("button", name="Find genres").click()
    page.locator("#language").get_by_text("Read as Russian (ru)").wait_for()
    assert {"Fantasy", "Adventure"} & set(page.locator("#chips .chip .name").all_inner_texts())
    page.screenshot(path=str(ARTIFACTS / "page-russian.png"), full_page=True)


def test_ctrl_enter_submits_and_empty_text_is_refused_with_a_message(page):
    page.locator("#text").fill("   ")
    page.locator("#text").press("Control+Enter")
    error = page.get_by_role("alert")
    error.wait_for()
    assert "Please type something" in error.inner_text()


def test_oversized_text_is_refused_with_a_message(page):
    page.locator("#text").fill("word " * 2_500)
    page.get_by_role("button", name="Find genres").click()
    assert "too long" in page.get_by_role("alert").inner_text()


def test_lookup_mode_finds_a_title(page):
    page.get_by_label("A title, review or studio (lookup)").check()
    page.get_by_label("A title, a review or a studio").fill("Matrix 1999")
    page.get_by_label("A title, a review or a studio").press("Control+Enter")
    lookup = page.locator("#lookup")
    lookup.get_by_text("Matched: The Matrix (1999)").wait_for()
    assert "Taken for a title" in lookup.inner_text()
    assert page.locator("#chips .chip .name").all_inner_texts()[:2] == ["Action", "Sci-Fi"]
    assert page.get_by_role("alert").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "page-lookup.png"), full_page=True)


def test_a_title_typed_in_the_default_mode_answers_with_the_films_labels(page):
    page.get_by_label("Anything (detected)").check()
    page.get_by_label("What do you know about the film?").fill("Titanic")
    page.get_by_role("button", name="Find genres").click()
    lookup = page.locator("#lookup")
    lookup.get_by_text("Matched: Titanic (1997)").wait_for()
    assert {"Romance", "Drama"} <= set(page.locator("#chips .chip .name").all_inner_texts())
    assert "reference" in page.locator("#chips .chip .from").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "page-title.png"), full_page=True)


def test_text_of_no_film_is_flagged(page):
    page.get_by_label("Anything (detected)").check()
    page.get_by_label("What do you know about the film?").fill("Whisk three eggs with sugar and bake for 25 minutes.")
    page.get_by_role("button", name="Find genres").click()
    page.locator("#confidence").get_by_text("This does not read like a film").wait_for()


def test_the_votes_genres_show_at_once_and_a_slow_llms_refinement_after(small_index_dir, page):
    import json
    import threading

    from .fake_llm import FakeLLMServer

    gate = threading.Event()
    with FakeLLMServer(json.dumps({"genres": ["Fantasy", "Adventure"]}), gate=gate) as llm:
        classifier = make_classifier(small_index_dir, llm_backend="openai", openai_base_url=f"{llm.url}/v1")
        with serve_in_thread(create_app(classifier.settings, classifier)) as url:
            page = page.context.browser.new_page()  # the module's browser, a page of its own
            try:
                page.goto(url)
                page.locator("#text").fill("A young wizard embarks on an adventure to defeat a dark sorcerer.")
                page.get_by_role("button", name="Find genres").click()
                page.locator("#chips .chip").first.wait_for()
                assert llm.chat_started.wait(10) and not gate.is_set()  # the LLM is still thinking
                assert "neighbour vote" in page.locator("#meta").inner_text()
                page.locator("#refine").get_by_text("Asking the LLM").wait_for()
                gate.set()
                page.locator("#refine").get_by_text("Refined by the LLM").wait_for(timeout=15000)
                assert "openai LLM" in page.locator("#meta").inner_text()
                assert {"Fantasy", "Adventure"} <= set(page.locator("#chips .chip .name").all_inner_texts())
            finally:
                gate.set()
                page.close()
                classifier.close()


def test_not_right_sends_a_correction_that_answers_once_an_editor_approves_it(own_index_dir, page):
    story = ("A retired lighthouse keeper teaches orphaned geese to fly south by leading them in his homemade "
             "glider.")
    classifier = make_classifier(own_index_dir, feedback_page=True, feedback_token="alice:t0ken-alice",
                                 multilingual_model="")
    with serve_in_thread(create_app(classifier.settings, classifier)) as url:
        page = page.context.browser.new_page()
        try:
            page.goto(url)
            page.locator("#text").fill(story)
            page.get_by_role("button", name="Find genres").click()
            page.locator("#chips .chip").first.wait_for()
            assert page.locator("#recognised").is_hidden()
            before = sorted(page.locator("#chips .chip .name").all_inner_texts())
            page.get_by_text("Not right?").click()
            for box in page.locator("#correct-genres input").all():
                box.uncheck()
            page.get_by_label("Western", exact=True).check()
            page.get_by_label("Music", exact=True).check()
            page.get_by_role("button", name="Send correction").click()
            page.locator("#correct-status").get_by_text("waiting for an editor's review").wait_for()
            page.locator("#correct-status").evaluate("node => { node.textContent = ''; }")
            page.get_by_role("button", name="Send correction").click()  # sent again: its key stores it once
            page.locator("#correct-status").get_by_text("correction 1 is waiting").wait_for()
            page.get_by_role("button", name="Find genres").click()  # an anonymous correction is not served yet
            page.locator("#chips .chip").first.wait_for()
            assert page.locator("#recognised").is_hidden() and before != ["Music", "Western"]
            page.locator("#correct-waiting").get_by_text("Your correction 1 of this text is waiting for an "
                                                         "editor's review").wait_for()
            page.screenshot(path=str(ARTIFACTS / "page-correction-waiting.png"), full_page=True)
            editor = {"X-API-Key": "t0ken-alice"}
            pending = httpx.get(f"{url}/feedback?status=pending", headers=editor).json()["corrections"]
            assert [(c["id"], c["author"], c["status"]) for c in pending] == [(1, "page", "pending")]
            assert httpx.post(f"{url}/feedback/1/approve", headers=editor).json()["status"] == "served"
            page.get_by_role("button", name="Find genres").click()
            page.locator("#recognised").get_by_text("Learned from a correction").wait_for()
            assert sorted(page.locator("#chips .chip .name").all_inner_texts()) == ["Music", "Western"]
            assert page.locator("#correct-waiting").is_hidden()
            page.screenshot(path=str(ARTIFACTS / "page-correction.png"), full_page=True)
        finally:
            page.close()
            classifier.close()


def test_the_correction_box_is_absent_unless_the_page_may_send_corrections(page):
    page.locator("#text").fill("A young wizard embarks on an adventure to defeat a dark sorcerer.")
    page.get_by_role("button", name="Find genres").click()
    page.locator("#chips .chip").first.wait_for()
    assert page.locator("#correct").is_hidden()


def test_the_pages_say_when_the_corrections_store_cannot_be_reached(own_index_dir, page, outage_cluster):
    """Corrections kept in a PostgreSQL server that is down: the page's answer says it was answered without them, and
    the editors' view says why it cannot list them."""
    classifier = make_classifier(own_index_dir, corrections_url=outage_cluster.url(), feedback_token="alice:t0ken",
                                 multilingual_model="")
    with serve_in_thread(create_app(classifier.settings, classifier)) as url:
        tab = page.context.browser.new_page()
        try:
            tab.goto(url)
            tab.locator("#text").fill("A young wizard embarks on an adventure to defeat a dark sorcerer.")
            tab.get_by_role("button", name="Find genres").click()
            tab.locator("#notes").get_by_text("answered without corrections").wait_for()
            tab.goto(f"{url}/review")
            tab.get_by_label("Editor's token").fill("t0ken")
            tab.get_by_label("Editor's token").press("Enter")
            tab.get_by_role("alert").get_by_text("unreachable").wait_for()
        finally:
            tab.close()
    classifier.close()
