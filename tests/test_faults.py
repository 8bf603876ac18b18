"""Faults the service guards against, each injected: an LLM outage during calibration, unusable answers, two
servers under one model name, a calibration of another index, empty secrets, a reload racing a request, a
build racing a reload, a failing pickup of the multilingual part, a write cut short."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from service import calibration
from service.api.app import create_app
from service.build import build_index
from service.genres import DEFAULT
from service.llm import LLMError, make_gate
from service.llm.gate import Question
from service.settings import ConfigurationError, Settings
from service.store import index_identity, read_manifest

from .conftest import make_client, served_settings, tmdb_rows, write_generic_csv
from .fake_llm import GOOD, FakeLLMServer
from .local_server import closed_port_url
from .test_calibration import VALIDATION_FILMS, backend_settings

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}


@pytest.fixture
def index_copy(small_index_dir, tmp_path):
    return shutil.copytree(small_index_dir, tmp_path / "index")


@pytest.mark.parametrize("outage", ["refused", "http500", "garbage"])
def test_a_calibration_during_an_outage_stores_nothing_and_fails_loudly(index_copy, outage):
    from service.evaluation import calibrate

    def run(url):
        settings = served_settings(index_dir=index_copy, **backend_settings("openai", url))
        return calibrate.run(settings, films=VALIDATION_FILMS, progress=False)

    if outage == "refused":
        with pytest.raises(calibration.CalibrationRefused, match="answered 0 of"):
            run(closed_port_url())
    else:
        with FakeLLMServer("http500" if outage == "http500" else "{not json") as llm, \
                pytest.raises(calibration.CalibrationRefused, match="Nothing was stored"):
            run(llm.url)
    assert not (index_copy / calibration.CALIBRATIONS_FILE).exists()


def test_the_calibrate_command_exits_non_zero_when_the_llm_is_down(index_copy):
    done = subprocess.run([sys.executable, "-m", "service.cli", "calibrate-llm", "--llm", "openai", "--films", "10",
                           "--no-languages"], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "MOVIEGENRE_INDEX_DIR": str(index_copy),
                               "OPENAI_BASE_URL": f"{closed_port_url()}/v1"})
    assert done.returncode == 1 and "calibration refused" in done.stdout and "Traceback" not in done.stderr


def test_an_unusable_answer_is_asked_again_and_only_a_usable_one_is_kept(tmp_path):
    answers = iter(["{not json", "", '{"genres": ["Space Opera"]}', GOOD])
    with FakeLLMServer(lambda messages: next(answers)) as llm:
        settings = Settings(**backend_settings("openai", llm.url))
        gate = make_gate(settings, tmp_path / "answers.sqlite")
        question = [Question([{"role": "user", "content": "a film"}], {}, DEFAULT)]
        for _ in range(3):  # garbage, empty, off the vocabulary: each a failure, none kept
            [answer] = gate.ask_blocking(question)
            assert isinstance(answer, LLMError) and answer.outcome == "unusable"
        assert gate.ask_blocking(question) == [["Fantasy", "Adventure"]]
        gate.close()
        again = make_gate(settings, tmp_path / "answers.sqlite")  # a new process: the disk cache answers
        assert again.ask_blocking(question) == [["Fantasy", "Adventure"]]
        again.close()
        assert len(llm.chat_requests()) == 4


def test_two_servers_under_one_model_name_share_neither_answers_nor_calibrations(tmp_path, index_copy):
    drama = json.dumps({"genres": ["Drama"]})
    with FakeLLMServer(GOOD) as first, FakeLLMServer(drama) as second:
        settings = [Settings(**backend_settings("openai", server.url)) for server in (first, second)]
        gates = [make_gate(s, tmp_path / "answers.sqlite") for s in settings]
        question = [Question([{"role": "user", "content": "a film"}], {}, DEFAULT)]
        assert [g.ask_blocking(question) for g in gates] == [[["Fantasy", "Adventure"]], [["Drama"]]]
        for g in gates:
            g.close()
    index = index_identity(read_manifest(index_copy))
    calibration.save(index_copy, settings[0].llm.identity(), index, {"english": {"weight": 0.5, "floor": 0.0,
                                                                                  "films": 30}})
    default = calibration.Fusion(0.2, 0.1)
    assert calibration.fusion_for(index_copy, settings[0].llm.identity(), index, "english", default).weight == 0.5
    assert calibration.fusion_for(index_copy, settings[1].llm.identity(), index, "english", default) == default


def test_a_calibration_measured_on_another_index_is_ignored_and_health_says_it_is_stale(index_copy):
    with FakeLLMServer() as llm:
        settings = backend_settings("openai", llm.url)
        calibration.save(index_copy, Settings(**settings).llm.identity(), "another-index",
                         {"english": {"weight": 0.0, "floor": 0.0, "films": 300}})
        client = make_client(index_copy, **settings)
        fusion = client.get("/health").json()["llm"]["fusion"]["english"]
        body = client.post("/classify", json=WIZARD).json()
    assert fusion["weight"] == 0.2 and fusion["source"] == "default" and "another index" in fusion["stale"]
    assert body["backend"] == "openai"  # the stale "no say" did not switch the LLM off


def test_an_empty_admin_token_keeps_reload_closed(small_index_dir, monkeypatch):
    monkeypatch.setenv("MOVIEGENRE_ADMIN_TOKEN", "")
    settings = Settings(index_dir=small_index_dir, llm_backend="none")
    assert settings.service.admin_token is None
    with TestClient(create_app(settings)) as client:
        for headers in ({}, {"X-API-Key": ""}, {"Authorization": "Bearer "}):
            assert client.post("/admin/reload", headers=headers).status_code == 403


def test_an_empty_api_key_refuses_to_start_instead_of_opening_classify(small_index_dir, monkeypatch):
    monkeypatch.setenv("MOVIEGENRE_API_KEY", "")
    with pytest.raises(ConfigurationError, match="MOVIEGENRE_API_KEY is set but names no key"):
        create_app(Settings(index_dir=small_index_dir, llm_backend="none"))
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "MOVIEGENRE_INDEX_DIR": str(small_index_dir),
                               "MOVIEGENRE_PORT": "1"})
    assert done.returncode == 2 and "set but names no key" in done.stdout and "Traceback" not in done.stderr


def test_a_request_that_read_the_runtime_just_before_a_reload_gets_the_new_one(small_index_dir):
    from service.api.state import runtime_for, serving_runtime
    from service.loading import load_classifier

    settings = served_settings(index_dir=small_index_dir)
    old, new = (runtime_for(load_classifier(settings)) for _ in range(2))

    class ReloadedWhileRead:
        """The app's state, where a reload lands right after a request reads the runtime."""
        def __init__(self):
            self._runtime = old

        @property
        def runtime(self):
            current = self._runtime
            if current is old:
                self._runtime = new
                old.retire()  # what reload_runtime does: the new one is served, the old one closed (no users)
            return current

    with serving_runtime(ReloadedWhileRead()) as runtime:
        assert runtime is new and old.closed
        assert runtime.classifier.classify(WIZARD["description"]).genres
    new.retire()


def test_a_runtime_retired_under_a_request_is_closed_off_the_event_loop(small_index_dir):
    # the last request on a replaced runtime ends on the event loop, and closing waits on the LLM client's loop and
    # the corrections store: it must run elsewhere, or every request would wait with it
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from .conftest import HeldDrafts, make_classifier, serve_in_thread

    classifier = make_classifier(small_index_dir, admin_token="adm1n")
    held, closed, on_a_loop = HeldDrafts(classifier), threading.Event(), []
    close = classifier.close

    def recorded_close(**kwargs):
        try:
            asyncio.get_running_loop()
            on_a_loop.append(True)
        except RuntimeError:
            on_a_loop.append(False)
        close(**kwargs)
        closed.set()

    classifier.close = recorded_close
    app = create_app(classifier.settings, classifier)
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        request = pool.submit(httpx.post, f"{url}/classify", json=WIZARD, timeout=60)
        assert held.wait_started(1)
        assert httpx.post(f"{url}/admin/reload", headers={"X-API-Key": "adm1n"}, timeout=60).status_code == 200
        assert not closed.is_set()  # still in use by the request
        held.release()
        assert request.result(timeout=60).status_code == 200
        assert closed.wait(30)
    assert on_a_loop == [False]  # (the runtime the reload loaded is closed by the app's shutdown)


@pytest.fixture
def rebuildable(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", llm_backend="none", admin_token="adm1n")
    corpus = write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120))
    build_index(corpus, settings.index.dir, settings, progress=False)
    return settings, corpus


def test_a_loader_that_read_the_previous_manifest_still_finds_its_build(rebuildable):
    from service.heads import scorer_file

    settings, corpus = rebuildable
    builds = []
    for _ in range(3):
        builds.append(read_manifest(settings.index.dir)["build"])
        build_index(corpus, settings.index.dir, settings, progress=False)
    current = read_manifest(settings.index.dir)["build"]
    kept = sorted(p.name for p in (settings.index.dir / "builds").iterdir())
    assert kept == sorted({current.split("/")[1], builds[-1].split("/")[1]})  # the current and the previous
    assert (settings.index.dir / builds[-1] / scorer_file("english")).exists()


def test_a_build_whose_blend_lost_its_heads_is_refused_and_the_old_index_keeps_serving(rebuildable):
    from service.heads import scorer_file

    settings, corpus = rebuildable
    with TestClient(create_app(settings)) as client:
        manifest = build_index(write_generic_csv(corpus.with_name("b.csv"), tmdb_rows(0, 150)), settings.index.dir,
                               settings, progress=False).manifest
        assert manifest["parts"]["english"]["blend"]
        (settings.index.dir / manifest["build"] / scorer_file("english")).unlink()
        refused = client.post("/admin/reload", headers={"X-API-Key": "adm1n"})
        assert refused.status_code == 409 and "missing" in refused.json()["error"]
        assert client.get("/health").json()["index_films"] == 120
        assert client.post("/classify", json=WIZARD).status_code == 200


def test_a_build_made_current_while_loading_is_loaded_instead(rebuildable, monkeypatch):
    from service import loading
    from service.store import IndexLoadError

    settings, corpus = rebuildable
    real, calls = loading._load, []

    def load_while_a_build_lands(*args):
        calls.append(1)
        if len(calls) == 1:  # the files of the build this load read vanish under it, as a new one lands
            build_index(write_generic_csv(corpus.with_name("b.csv"), tmdb_rows(0, 150)), settings.index.dir,
                        settings, progress=False)
            raise IndexLoadError("damaged")
        return real(*args)

    monkeypatch.setattr(loading, "_load", load_while_a_build_lands)
    assert len(loading.load_classifier(settings).index) == 150 and len(calls) == 2


def test_a_failed_pickup_of_the_multilingual_part_is_reported_and_tried_again(tmp_path, monkeypatch):
    from service.api import state

    monkeypatch.setattr(state, "PICKUP_POLL_S", 0.2)
    models = served_settings().index.exported_models()
    for model in ("all-MiniLM-L6-v2", "multilingual-e5-small"):
        shutil.copytree(models / model, tmp_path / "models" / model)
    settings = served_settings(index_dir=tmp_path / "index", multilingual_model="multilingual-e5-small",
                               models_dir=tmp_path / "models")
    corpus = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 120))
    build_index(corpus, settings.index.dir, settings, progress=False, parts=["english"])
    real, failures = state.reload_runtime, []

    def damaged_once(app_state):
        if not failures:
            failures.append(1)
            raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed")
        return real(app_state)

    monkeypatch.setattr(state, "reload_runtime", damaged_once)
    with TestClient(create_app(settings)) as client:
        build_index(corpus, settings.index.dir, settings, progress=False)
        seen = _wait_for(client, lambda m: m["last_error"] is not None)
        assert "INVALID_PROTOBUF" in seen["last_error"] and seen["status"] == "building"
        ready = _wait_for(client, lambda m: m["status"] == "ready")
        assert ready["last_error"] is None


def _wait_for(client, condition, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        multilingual = client.get("/health").json()["multilingual"]
        if condition(multilingual):
            return multilingual
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {multilingual}")


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d", "\u2060\ufeff", "\u200e \u200f\u00ad"])
def test_invisible_characters_alone_are_refused_like_whitespace(client, text):
    for path, body in (("/classify", {"description": text}), ("/classify/batch", {"descriptions": [text]})):
        response = client.post(path, json=body)
        assert response.status_code == 422 and "empty" in response.json()["error"]


def test_an_atomic_write_cut_short_leaves_the_old_file_whole(tmp_path):
    from service.atomic import atomic_file

    target = tmp_path / "calibrations.json"
    target.write_text('{"old": true}')
    with pytest.raises(OSError), atomic_file(target) as f:
        f.write('{"new": ')
        raise OSError("disk full")
    assert target.read_text() == '{"old": true}' and [p.name for p in tmp_path.iterdir()] == ["calibrations.json"]
