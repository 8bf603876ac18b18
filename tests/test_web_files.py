"""The files page at /files, driven in a real headless Chromium at a phone's width: a catalogue uploaded as a job,
its progress bar watched to 100%, both files downloaded and read back, the catalogue at a glance; a file too big,
a file without a text column, and a wrong key."""
import csv
import json
import threading

import pytest
from playwright.sync_api import expect, sync_playwright

from service.api.app import create_app
from service.batch.chunks import sidecar_path
from service.batch.run import Job, classify_file

from .conftest import make_classifier, serve_in_thread, tmdb_rows
from .test_web import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

MAX_UPLOAD = 50_000
expect.set_options(timeout=30_000)  # a bound, not a measure


@pytest.fixture(scope="module")
def classifier(small_index_dir):
    classifier = make_classifier(small_index_dir, multilingual_model="")
    yield classifier
    classifier.close()


@pytest.fixture(scope="module")
def server(classifier, tmp_path_factory):
    settings = classifier.settings.replace(jobs_dir=tmp_path_factory.mktemp("jobs"), jobs_chunk_rows=8,
                                           max_upload_bytes=MAX_UPLOAD)
    with serve_in_thread(create_app(settings, classifier)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 390, "height": 900})  # a phone-width screen
    yield page
    page.close()


class Stepper:
    """The classifier's texts wait for a permit each: the test lets the job go on as far as it wants."""

    def __init__(self, classifier):
        self.classifier, self.permits = classifier, threading.Semaphore(0)
        draft = type(classifier).draft

        def stepped(texts, labels=None):
            self.permits.acquire(timeout=60)
            return draft(classifier, texts, labels)

        classifier.draft = stepped

    def allow(self, texts: int) -> None:
        for _ in range(texts):
            self.permits.release()

    def close(self) -> None:
        self.allow(10_000)
        vars(self.classifier).pop("draft", None)


def write_catalogue(path, rows: int = 32):
    films = [{"id": i, "title": r["title"], "plot": r["plot"]} for i, r in enumerate(tmdb_rows(600, rows))]
    films[4]["plot"] = "   "  # a row that cannot be classified
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(films[0]))
        writer.writeheader()
        writer.writerows(films)
    return path


def test_a_file_is_classified_with_a_live_progress_bar_and_both_files_download(server, classifier, page, tmp_path):
    source = write_catalogue(tmp_path / "catalogue.csv")
    stepper = Stepper(classifier)
    try:
        page.goto(f"{server}/files")
        page.get_by_label("Catalogue file").set_input_files(source)
        page.get_by_label("CSV", exact=True).check()
        page.get_by_role("button", name="Classify the file").click()
        expect(page.locator("#bar-label")).to_have_text("Classifying: 0%")
        stepper.allow(7)  # the texts of the first of four chunks (its fifth row is blank)
        expect(page.locator("#bar-label")).to_have_text("Classifying: 25%")
        expect(page.get_by_role("status")).to_contain_text("Classified 8 of 32 rows")
        assert page.locator("#bar").evaluate("bar => bar.value") == 0.25
    finally:
        stepper.close()
    expect(page.locator("#bar-label")).to_have_text("Classified: 100%")
    assert page.locator("#bar").evaluate("bar => bar.value") == 1
    expect(page.get_by_role("status")).to_contain_text("Done: 31 rows classified, 1 rejected")
    with page.expect_download() as output:
        page.get_by_role("button", name="Download the output (CSV, 31 rows)").click()
    with page.expect_download() as rejected:
        page.get_by_role("button", name="Download the rejected rows (1)").click()
    assert output.value.suggested_filename == "catalogue.genres.csv"
    expected = classify_file(Job.of(source, tmp_path / "expected.csv", classifier.settings, chunk_rows=8),
                             classifier).output
    assert open(output.value.path(), "rb").read() == expected.read_bytes()
    with open(output.value.path(), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "title", "plot", "genres", "scores", "backend", "language"]
    assert len(rows) == 31 and all(row["genres"] for row in rows)
    [refused] = [json.loads(line) for line in open(rejected.value.path(), encoding="utf-8")]
    assert (refused["row"], refused["reason"]) == (5, "empty: 'plot' is blank")
    assert open(rejected.value.path(), "rb").read() == sidecar_path(expected).read_bytes()
    glance = page.locator("#glance")
    expect(glance).to_be_visible()
    genres = {g for row in rows for g in row["genres"].split("|")}
    expect(page.locator("#genre-chart svg rect")).to_have_count(len(genres))
    expect(page.locator("#confidence-chart svg rect")).to_have_count(10)
    expect(page.locator("#unsure tbody tr")).to_have_count(20)
    page.screenshot(path=str(ARTIFACTS / "files-done.png"), full_page=True)
    page.set_viewport_size({"width": 1000, "height": 1500})  # the README's picture (docs/files.png)
    page.screenshot(path=str(ARTIFACTS / "files-done-wide.png"))


def test_a_file_too_big_is_refused_before_it_is_sent(server, page, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("plot\n" + "A long plot about a heist.\n" * 3000, encoding="utf-8")
    page.goto(f"{server}/files")
    page.get_by_label("Catalogue file").set_input_files(big)
    page.get_by_role("button", name="Classify the file").click()
    expect(page.get_by_role("alert")).to_have_text("big.csv is 79 KB: this service takes files of at most 49 KB.")
    expect(page.locator("#job")).to_be_hidden()


def test_a_file_without_a_text_column_offers_its_columns_to_choose_from(server, page, tmp_path):
    source = tmp_path / "films.csv"
    source.write_text("id,synopsis\n1,A heist in Lyon goes wrong when the getaway driver falls in love.\n",
                      encoding="utf-8")
    page.goto(f"{server}/files")
    page.get_by_label("Catalogue file").set_input_files(source)
    page.get_by_role("button", name="Classify the file").click()
    expect(page.get_by_role("alert")).to_contain_text("choose the column to classify")
    expect(page.locator("#column-hint")).to_have_text("Its columns: id, synopsis.")
    page.get_by_label("Text column").fill("synopsis")
    page.get_by_role("button", name="Classify the file").click()
    expect(page.locator("#bar-label")).to_have_text("Classified: 100%")
    expect(page.get_by_role("alert")).to_be_hidden()


def test_with_keys_set_the_page_asks_for_one_and_a_wrong_one_says_so(classifier, browser, tmp_path):
    settings = classifier.settings.replace(jobs_dir=tmp_path / "jobs", api_keys="shop:k3y-shop")
    with serve_in_thread(create_app(settings, classifier)) as url:
        page = browser.new_page(viewport={"width": 390, "height": 900})
        try:
            page.goto(f"{url}/files")
            expect(page.locator("#upload")).to_be_hidden()
            page.get_by_label("API key or editor's token").fill("wrong")
            page.get_by_label("API key or editor's token").press("Enter")
            expect(page.get_by_role("alert")).to_contain_text("That key was not accepted")
            page.get_by_label("API key or editor's token").fill("k3y-shop")
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#upload")).to_be_visible()
            expect(page.get_by_role("alert")).to_be_hidden()
            assert page.evaluate("localStorage.length") == 0 and "k3y" not in page.url
        finally:
            page.close()
