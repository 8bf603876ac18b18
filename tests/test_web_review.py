"""The editors' view at /review, driven in a real headless Chromium at a phone's width: sign in, clear a queue of
page corrections (approve, undo, reject one sender's and the rest at once), search, revoke and undo."""
import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright

from service.api.app import create_app

from .conftest import copy_index, make_classifier, serve_in_thread, tmdb_rows
from .test_web import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

EDITOR = "t0ken-alice"
SENDERS = {"10.0.0.1": 30, "10.0.0.2": 20}  # the page's clients and how many corrections each sends
ASKED = ["Music", "Western"]
expect.set_options(timeout=30_000)  # a bound, not a measure: an action here embeds and lists 50 answers


@pytest.fixture(scope="module")
def service(small_index_dir, tmp_path_factory):
    index = copy_index(small_index_dir, tmp_path_factory.mktemp("review") / "index")
    classifier = make_classifier(index, feedback_page=True, feedback_token=f"alice:{EDITOR}",
                                 feedback_page_rate_limit="1000/hour", multilingual_model="")
    app = create_app(classifier.settings, classifier)
    with serve_in_thread(app) as url:
        yield app, url
    classifier.close()


@pytest.fixture(scope="module")
def plots() -> list[str]:
    """50 real plots the index does not hold, the page's corrections of them sent by two clients in turn."""
    return [r["plot"] for r in tmdb_rows(700, sum(SENDERS.values()))]


@pytest.fixture
def page(service):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 900})  # a phone-width screen
        page.goto(f"{service[1]}/review")
        yield page
        browser.close()


def _send_from_the_page(app, plots: list[str]) -> dict[str, list[str]]:
    """Each sender's corrections, as the page sends them (no token: they wait for review)."""
    sent, texts = {}, iter(plots)
    for address, count in SENDERS.items():
        client = TestClient(app, client=(address, 50000))
        sent[address] = [next(texts) for _ in range(count)]
        for text in sent[address]:
            assert client.post("/feedback", json={"text": text, "genres": ASKED}).status_code == 202
    return sent


def _classify(url: str, text: str) -> dict:
    return httpx.post(f"{url}/classify?llm=false", json={"description": text}).json()


def _sign_in_by_keyboard(page, token: str) -> None:
    page.get_by_label("Editor's token").focus()
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def _tab_to(page, label_start: str) -> None:
    """Tab until the focused element's accessible name starts with `label_start` (keyboard only)."""
    for _ in range(80):
        page.keyboard.press("Tab")
        if (page.evaluate("document.activeElement.getAttribute('aria-label') || ''")).startswith(label_start):
            return
    raise AssertionError(f"no control named {label_start!r} is reachable by Tab")


def test_a_wrong_token_says_so_and_is_not_kept(page):
    _sign_in_by_keyboard(page, "not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("That token was not accepted")
    assert page.evaluate("sessionStorage.length") == 0 and page.evaluate("localStorage.length") == 0
    assert "not-a-token" not in page.url
    expect(page.locator("#queue")).to_be_hidden()


def test_an_editor_clears_a_queue_of_50_page_corrections_and_the_service_answers_with_the_approved(
        service, plots, page):
    app, url = service
    sent = _send_from_the_page(app, plots)
    _sign_in_by_keyboard(page, EDITOR)
    expect(page.locator("#queue-count")).to_have_text("50 waiting of at most 1000.")
    expect(page.locator("#pending .card")).to_have_count(50)
    assert page.evaluate("localStorage.length") == 0  # the token is kept in this tab only
    shares = page.locator("#shares li")
    expect(shares).to_have_count(2)
    expect(shares.first).to_contain_text("30 waiting (60% of the queue")
    first = page.locator("#pending .card").first
    expect(first).to_contain_text("Asks for")
    assert _classify(url, sent["10.0.0.2"][-1])["genres"] == [
        g.strip() for g in first.locator("dd").nth(1).inner_text().split(",")]  # what the service answers today
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=False)
    page.set_viewport_size({"width": 1000, "height": 1100})  # the README's picture (docs/review.png)
    page.screenshot(path=str(ARTIFACTS / "review-queue-wide.png"))
    page.set_viewport_size({"width": 390, "height": 900})

    approved = []
    _tab_to(page, "Approve correction")  # the newest: the second sender's last
    for _ in range(6):  # approved one after the other, by keyboard: the focus moves to the next card's Approve
        name = page.evaluate("document.activeElement.getAttribute('aria-label')")
        page.keyboard.press("Enter")
        expect(page.locator("#status-text")).to_contain_text(f"Approved {name.split()[-2]} {name.split()[-1]}")
        expect(page.locator("#pending .card")).to_have_count(50 - len(approved) - 1)
        approved.append(int(name.split()[-1]))
    page.get_by_role("button", name="Undo").click()  # the last approval taken back: it is revoked
    expect(page.locator("#status-text")).to_contain_text(f"Undone: correction {approved[-1]} is revoked")

    client_a = page.locator("#shares li").filter(has_text="30 waiting").get_by_role("button")
    client_a.click()
    page.get_by_role("dialog").get_by_role("button", name="Reject").click()
    expect(page.locator("#status-text")).to_contain_text("Rejected 30 corrections")
    page.get_by_label("Reject everything that has waited at least").fill("0")
    page.get_by_role("button", name="Reject them").click()
    page.get_by_role("dialog").get_by_role("button", name="Reject").click()
    expect(page.locator("#status-text")).to_contain_text("Rejected 14 corrections")
    expect(page.locator("#pending-empty")).to_be_visible()
    expect(page.locator("#queue-count")).to_have_text("0 waiting of at most 1000.")

    newest_first = sent["10.0.0.2"][::-1]
    for text in newest_first[:5]:  # approved: answered with the correction, by the service
        answer = _classify(url, text)
        assert sorted(answer["genres"]) == ASKED and answer["recognised"]["source"] == "correction"
    for text in newest_first[5:7] + sent["10.0.0.1"][:2]:  # undone, or rejected: not
        assert (_classify(url, text)["recognised"] or {}).get("source") != "correction"
    expect(page.locator("#served-list .card")).to_have_count(5)
    page.screenshot(path=str(ARTIFACTS / "review-cleared.png"), full_page=True)


def test_served_corrections_are_searched_and_a_revocation_is_undone(service, page):
    _, url = service
    text = "A lighthouse keeper's daughter races a sailing yacht around the world against her father's rival."
    sent = httpx.post(f"{url}/feedback", headers={"X-API-Key": EDITOR}, json={"text": text, "genres": ["War"]})
    assert sent.status_code == 201, sent.text
    _sign_in_by_keyboard(page, EDITOR)
    page.get_by_label("Search by title or text").fill("LIGHTHOUSE KEEPER'S")
    page.get_by_label("Search by title or text").press("Enter")
    cards = page.locator("#served-list .card")
    expect(cards).to_have_count(1)
    correction = sent.json()["id"]
    cards.get_by_role("button", name=f"Revoke correction {correction}").click()
    expect(page.locator("#status-text")).to_contain_text(f"Revoked correction {correction}")
    assert (_classify(url, text)["recognised"] or {}).get("source") != "correction"
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#status-text")).to_contain_text("answered with War again")
    assert _classify(url, text)["recognised"]["source"] == "correction"
    expect(cards).to_have_count(1)

