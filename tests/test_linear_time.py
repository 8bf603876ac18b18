"""Every regular expression that sees request text runs in linear time: a text ten times longer may take
at most about twenty times longer (quadratic matching takes a hundred times longer). Measured in the CPU time of
the thread that matches, which other processes on a busy machine do not move."""
import time

import pytest

from service.lookup.kinds import TitleQuery, detect_kind, parse_title, titles_in_review

# Long runs of separators, spaces, quotes and capitals, and near-misses of each pattern.
ADVERSARIAL_UNITS = [",", " ", ", ", '"', "'a", "“", "A", "A ", "Aof ", "A'", "The ", "1", "1.", "1 /", "8/1",
                     "1999,", "1999 ", "(", "( 1999", "[", "-", "1 star", "I ", "loved ", ".", "! ", "\t\n"]
FLOOR_S = 0.05  # timing noise on a shared machine; a quadratic pattern at 10,000 characters takes seconds


def _best_of(fn, text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        fn(text)
        best = min(best, time.thread_time() - started)
    return best


@pytest.mark.parametrize("fn", [parse_title, detect_kind, titles_in_review])
@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
def test_ten_times_the_text_costs_at_most_twenty_times_the_time(fn, unit):
    short = unit * (1000 // len(unit))
    long = short * 10
    assert _best_of(fn, long) <= 20 * _best_of(fn, short) + FLOOR_S


def test_a_title_of_ten_thousand_commas_is_read_at_once():
    started = time.thread_time()
    assert parse_title("," * 10_000).year is None
    assert time.thread_time() - started < 0.5  # took 1.5 s of CPU with the quadratic pattern


@pytest.mark.parametrize("text, title, year", [
    ("the matrix (1999)", "the matrix", 1999), ("Matrix 1999", "Matrix", 1999), ("Heat, 1995", "Heat", 1995),
    ("Heat [1995]", "Heat", 1995), ("Alien - 1979", "Alien", 1979), ("1917", "1917", None),
    ("1917 (2019)", "1917", 2019), ("Blade Runner 2049", "Blade Runner 2049", None), ("Up 12009", "Up 12009", None),
    ("千と千尋の神隠し (2001)", "千と千尋の神隠し", 2001)])
def test_a_trailing_year_is_split_off(text, title, year):
    assert parse_title(text) == TitleQuery(title, year)
