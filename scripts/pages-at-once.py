"""N people on the page at once, in a real headless Chromium (Debian's, `make browser`; playwright from the dev
extra): each types a description and submits at the same moment. Prints, per page, when the vote's chips appeared
and when the LLM's refinement line settled, and what it said.

    .venv/bin/python scripts/pages-at-once.py http://127.0.0.1:5000 [pages]
"""
from __future__ import annotations

import sys
import threading
import time

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# written for this check: no film of the reference is told in these words
DESCRIPTIONS = [
    "A retired lighthouse keeper and a runaway girl sail a stolen boat up the coast, chased by her furious uncle.",
    "In a city where sleep is outlawed, an insomniac clerk discovers the government is harvesting dreams.",
    "Two rival bakers in a small Alpine village must team up to win a televised cake contest and save the square.",
    "A detective with a failing memory reopens the murder case that ended his career, following his own old notes.",
    "Colonists on a frozen moon hear music from beneath the ice and send a crew down to find its source.",
    "A shy accountant inherits a travelling circus and has one summer to make it profitable or sell the animals.",
]


def watch(browser, url: str, text: str, start: threading.Barrier, out: list) -> None:
    page = browser.new_page()
    page.goto(url)
    page.locator("#text").fill(text)
    start.wait()
    sent = time.monotonic()
    page.get_by_role("button", name="Find genres").click()
    page.locator("#chips .chip .name").first.wait_for(timeout=60_000)
    vote_s = time.monotonic() - sent
    vote = page.locator("#chips .chip .name").all_inner_texts()
    refine = page.locator("#refine")
    refine.wait_for(state="visible", timeout=60_000)
    page.wait_for_function("!document.getElementById('refine').classList.contains('pending')", timeout=180_000)
    out.append((text[:40], round(vote_s, 2), vote, round(time.monotonic() - sent, 2), refine.inner_text(),
                page.locator("#chips .chip .name").all_inner_texts()))


def main(url: str, pages: int) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        start, out = threading.Barrier(pages), []
        # playwright's sync API is one thread's: each page gets its own browser connection
        threads = [threading.Thread(target=lambda i=i: _one(url, DESCRIPTIONS[i % len(DESCRIPTIONS)], start, out))
                   for i in range(pages)]
        browser.close()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for text, vote_s, vote, settled_s, refine, final in out:
        print(f"{text!r}: vote in {vote_s} s {vote}; settled in {settled_s} s: {refine} -> {final}")


def _one(url: str, text: str, start: threading.Barrier, out: list) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            watch(browser, url, text, start, out)
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)
