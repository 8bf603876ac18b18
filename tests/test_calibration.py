"""The LLM's say in the answer: calibrated per model against the Ollama and OpenAI-compatible stand-ins,
stored in the index folder and used by the service; the answer cache; ?llm=false."""
from __future__ import annotations

import contextlib
import functools
import json
import random
import re
import shutil

import pytest

from service import calibration
from service.scoring.metrics import film_counts
from service.calibration import Fusion, Observation
from service.evaluation import calibrate
from service.genres import DEFAULT

from .conftest import make_client, served_settings, tmdb_rows, SMALL_CORPUS_FILMS
from .fake_llm import FakeLLMServer

WIZARD = "A young wizard embarks on an adventure to defeat a dark sorcerer."
VALIDATION_FILMS = SMALL_CORPUS_FILMS // 10  # the validation split of the fixture index


def backend_settings(backend: str, url: str) -> dict:
    return {"llm_backend": "ollama", "ollama_host": url} if backend == "ollama" else \
        {"llm_backend": "openai", "openai_base_url": f"{url}/v1", "openai_model": "qwen-stand-in"}


def _described(messages: list[dict]) -> str:
    return re.search(r"<film>\n(.*?)\n</film>", messages[-1]["content"], re.S).group(1)


@functools.cache
def _fixture_films() -> tuple[tuple[str, str], ...]:
    return tuple((r["plot"], r["genres"]) for r in tmdb_rows(0, SMALL_CORPUS_FILMS))


def gold_answers(messages: list[dict]) -> str:
    """A stand-in that knows every film: the labels of the plot it is asked about."""
    description = _described(messages)
    gold = next(genres for plot, genres in _fixture_films() if plot.startswith(description[:80]))
    return json.dumps({"genres": gold.split(", ")})


def random_answers(messages: list[dict]) -> str:
    rng = random.Random(_described(messages))  # the same film always gets the same guess
    return json.dumps({"genres": rng.sample(DEFAULT.names, rng.randint(1, 3))})


def run_calibration(index_dir, backend: str, llm: FakeLLMServer) -> dict:
    settings = served_settings(index_dir=index_dir, **backend_settings(backend, llm.url))
    return calibrate.run(settings, films=VALIDATION_FILMS, progress=False)


@pytest.fixture(scope="module")
def calibrated(small_index_dir, tmp_path_factory):
    """(backend, stand-in) → (calibration, the stand-in's server, the index folder it was stored in): each
    calibration runs once, on its own copy of the fixture index (calibration writes into the index folder). The
    stand-ins keep running for the module: a calibration holds for the server it was measured against."""
    done = {}
    with contextlib.ExitStack() as servers:
        def get(backend: str, answer):
            key = (backend, answer.__name__)
            if key not in done:
                index_dir = shutil.copytree(small_index_dir, tmp_path_factory.mktemp("index") / "index")
                llm = servers.enter_context(FakeLLMServer(answer))
                done[key] = (run_calibration(index_dir, backend, llm), llm, index_dir)
            return done[key]

        yield get


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_an_llm_that_answers_the_truth_gets_a_larger_say_than_the_default(calibrated, backend):
    result, llm, _ = calibrated(backend, gold_answers)
    english = result["routes"]["english"]
    # the validation films that are films make eval reports on (IMDb's top 1,000 holds some) never calibrate
    validation = result["held_out"]["dropped"]["reference validation split"]
    assert validation["dropped"] > 0 and english["films"] == validation["films"] - validation["dropped"]
    # every film the description was not recognised as (a film the reference holds) was asked about
    assert english["llm_answered"] == len(llm.chat_requests()) >= english["films"] - 2
    assert english["llm_only_f1"] > 0.95
    assert english["weight"] > Fusion(0.2, 0.1).weight
    assert english["fused_f1"] > english["fused_default_f1"] > english["vote_f1"]


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_an_llm_that_answers_at_random_cannot_cost_accuracy(calibrated, backend):
    english = calibrated(backend, random_answers)[0]["routes"]["english"]
    assert english["fused_f1"] >= english["vote_f1"] - 0.005
    assert english["weight"] == 0.0  # its best grid point does not beat chance: no say


def test_the_service_uses_the_calibration_of_its_model_and_says_so(calibrated):
    result, llm, index_dir = calibrated("openai", gold_answers)
    health = make_client(index_dir, **backend_settings("openai", llm.url)).get("/health").json()
    other = make_client(index_dir, **backend_settings("openai", llm.url) | {"openai_model": "another"})
    other_health = other.get("/health").json()
    english = health["llm"]["fusion"]["english"]
    assert english["weight"] == result["routes"]["english"]["weight"]
    assert f"calibrated for openai:qwen-stand-in at {llm.url}/v1" in english["source"]
    assert other_health["llm"]["fusion"]["english"] == {"weight": 0.2, "floor": 0.1, "source": "default",
                                                         "stale": None}


def test_a_model_calibrated_to_no_say_is_not_asked(calibrated):
    _, llm, index_dir = calibrated("ollama", random_answers)
    asked = len(llm.chat_requests())
    body = make_client(index_dir, **backend_settings("ollama", llm.url)).post(
        "/classify", json={"description": WIZARD}).json()
    assert len(llm.chat_requests()) == asked
    assert body["backend"] == "vote" and "calibrated to no say on the english route" in body["fallback_reason"]


def test_a_rerun_of_the_calibration_asks_the_llm_nothing_new(calibrated):
    first, llm, index_dir = calibrated("ollama", random_answers)
    asked = len(llm.chat_requests())
    again = run_calibration(index_dir, "ollama", llm)
    assert len(llm.chat_requests()) == asked and again["routes"] == first["routes"]


def test_calibrations_of_several_models_are_kept_side_by_side(tmp_path):
    index_dir = tmp_path
    a = {"backend": "ollama", "model": "a", "base_url": "http://127.0.0.1:11434"}
    b = {"backend": "openai", "model": "b", "base_url": "http://127.0.0.1:8080/v1"}
    calibration.save(index_dir, a, "index-1", {"english": {"weight": 0.4, "floor": 0.05, "films": 300}})
    calibration.save(index_dir, b, "index-1", {"english": {"weight": 0.1, "floor": 0.1, "films": 200}})
    default = Fusion(0.2, 0.1)
    assert calibration.fusion_for(index_dir, a, "index-1", "english", default).weight == 0.4
    assert calibration.fusion_for(index_dir, b, "index-1", "english", default).weight == 0.1
    assert calibration.fusion_for(index_dir, b, "index-1", "multilingual", default) == default
    assert calibration.fusion_for(index_dir, a | {"model": "c"}, "index-1", "english", default) == default


def test_the_paired_bootstrap_brackets_a_known_difference():
    gold = [("Drama",)] * 100
    better = film_counts(gold, [("Drama",)] * 80 + [("Comedy",)] * 20)
    worse = film_counts(gold, [("Drama",)] * 60 + [("Comedy",)] * 40)
    low, high = calibration.interval(calibration.paired_bootstrap(better, worse))
    assert 0 < low < 0.2 < high < 0.4  # F1 0.8 vs 0.6


def test_observations_fuse_per_route():
    o = Observation({"Drama": 0.5, "Comedy": 0.25}, ["Drama"], ["Comedy"], ("Drama", "Comedy"), 0.3, "multilingual")
    assert calibration.answers([o], None, 5) == [["Drama"]]
    assert calibration.answers([o], {"multilingual": Fusion(0.2, 0.1)}, 5) == [["Drama", "Comedy"]]
    assert calibration.answers([o], {"english": Fusion(0.2, 0.1)}, 5) == [["Drama"]]


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_a_repeated_description_makes_no_second_llm_call(small_index_dir, backend):
    with FakeLLMServer() as llm:
        client = make_client(small_index_dir, **backend_settings(backend, llm.url))
        first = client.post("/classify", json={"description": WIZARD}).json()
        second = client.post("/classify", json={"description": WIZARD}).json()
        assert len(llm.chat_requests()) == 1
        cache = client.get("/health").json()["llm"]["cache"]
    assert first["genres"] == second["genres"] and second["backend"] == backend
    assert cache["hits"] == 1 and cache["misses"] == 1 and cache["size"] == 1


def test_llm_false_answers_from_the_vote_without_asking_the_llm(small_index_dir):
    with FakeLLMServer() as llm:
        client = make_client(small_index_dir, **backend_settings("openai", llm.url))
        body = client.post("/classify?llm=false", json={"description": WIZARD}).json()
        batch = client.post("/classify/batch?llm=false", json={"descriptions": [WIZARD]}).json()
        assert llm.chat_requests() == []
    assert body["backend"] == "vote" and body["llm_genres"] is None and body["fallback_reason"] is None
    assert batch["results"][0]["backend"] == "vote"
