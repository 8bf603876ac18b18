"""Running it like a production service: Prometheus metrics, HTTPS, load shedding, rate limits, probes."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.build import build_index
from service.settings import Settings

from .conftest import HeldDrafts, make_classifier, make_client, serve_in_thread, tmdb_rows, write_generic_csv
from .fake_llm import FakeLLMServer

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}


def samples(client) -> dict[tuple, float]:
    """(sample name, sorted labels) → value, from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    """The sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


def test_requests_of_each_kind_move_their_counters_and_histograms(small_index_dir):
    client = make_client(small_index_dir)
    before = samples(client)
    client.post("/classify", json=WIZARD)
    client.post("/classify", json={"description": "Ein junger Zauberer zieht aus, um einen Magier zu besiegen."})
    client.post("/classify?mode=lookup", json={"description": "Avatar", "kind": "title"})
    client.post("/classify/batch", json={"descriptions": [WIZARD["description"]] * 3})
    client.post("/classify", json={"description": " "})
    after = samples(client)
    request = {"name": "moviegenre_requests_total", "path": "/classify", "method": "POST", "backend": "vote"}
    assert value(after, **request, route="english", status="200") - value(before, **request, status="200") >= 2
    assert value(after, "moviegenre_requests_total", path="/classify", route="multilingual", status="200") == 1
    assert value(after, "moviegenre_requests_total", path="/classify/batch", status="200") == 1
    assert value(after, "moviegenre_requests_total", path="/classify", status="422") == 1
    assert value(after, "moviegenre_request_seconds_count", path="/classify", status="200") == 3
    assert value(after, "moviegenre_request_seconds_bucket", path="/classify", status="200", le="30.0") == 3
    assert value(after, "moviegenre_lookups_total", source="reference", outcome="found") == 1
    assert value(after, "moviegenre_lookups_total", source="tmdb", outcome="skipped") == 1
    assert value(after, "moviegenre_index_films") == 300 and value(after, "moviegenre_ready") == 1
    [(_, info)] = [(n, ls) for (n, ls), _ in after.items() if n == "moviegenre_index_info"]
    assert dict(info)["build"].startswith("20")


@pytest.mark.parametrize("answer, outcome", [(json.dumps({"genres": ["Fantasy"]}), "answered"),
                                             ("hang", "timed_out"), ("{not json", "unusable")])
def test_llm_outcomes_and_the_answer_cache_are_counted(small_index_dir, answer, outcome):
    with FakeLLMServer(answer, hang_s=3) as llm:
        # only the hanging server needs a short deadline: a loaded machine may take a second to answer
        client = make_client(small_index_dir, llm_backend="openai", openai_base_url=f"{llm.url}/v1",
                             llm_timeout=1.0 if outcome == "timed_out" else 15.0, recognise_films=False)
        client.post("/classify", json=WIZARD)
        client.post("/classify", json=WIZARD)
        found = samples(client)
    assert value(found, "moviegenre_llm_requests_total", outcome=outcome) == 2
    cached = outcome == "answered"  # the second ask of a usable answer comes from the cache; a failure asks again
    assert value(found, "moviegenre_llm_cache_hits_total", backend="openai") == (1 if cached else 0)
    assert value(found, "moviegenre_llm_cache_misses_total", backend="openai") == (1 if cached else 2)


def test_an_unreachable_llm_is_counted_as_such(small_index_dir):
    from .local_server import closed_port_url

    client = make_client(small_index_dir, llm_backend="ollama", ollama_host=closed_port_url(), recognise_films=False)
    client.post("/classify", json=WIZARD)
    assert value(samples(client), "moviegenre_llm_requests_total", backend="ollama", outcome="unreachable") == 1


def test_metrics_can_be_turned_off(small_index_dir):
    assert make_client(small_index_dir, metrics=False).get("/metrics").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_https_with_a_certificate_answers_the_readme_curl(small_index_dir, tmp_path):
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port = _free_port()
    env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(small_index_dir), "LLM_BACKEND": "none",
                        "MOVIEGENRE_PORT": str(port), "MOVIEGENRE_SSL_CERTFILE": str(tmp_path / "server.pem"),
                        "MOVIEGENRE_SSL_KEYFILE": str(tmp_path / "server.pem")}
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()[1].decode()[-2000:]
            try:
                if httpx.get(f"https://127.0.0.1:{port}/livez", verify=trusted).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        curl = subprocess.run(["curl", "-sS", "--cacert", str(tmp_path / "ca.pem"), "-X", "POST",
                               f"https://127.0.0.1:{port}/classify", "-H", "Content-Type: application/json",
                               "-d", json.dumps(WIZARD)], capture_output=True, text=True, timeout=30)
        assert curl.returncode == 0, curl.stderr
        assert {"Fantasy", "Adventure"} & set(json.loads(curl.stdout)["genres"])
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken on the TLS port
            httpx.post(f"http://127.0.0.1:{port}/classify", json=WIZARD, timeout=5).raise_for_status()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_half_a_tls_configuration_refuses_to_start(small_index_dir, tmp_path):
    from service.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="both"):
        create_app(Settings(index_dir=small_index_dir, llm_backend="none", ssl_certfile=tmp_path / "x.pem"))


def test_a_flood_beyond_capacity_gets_503s_while_accepted_requests_succeed(small_index_dir):
    classifier = make_classifier(small_index_dir, recognise_films=False, max_in_flight=2, min_queue=0,
                                 max_queue_wait=0.05)
    held = HeldDrafts(classifier)  # the two requests admitted hold their CPU slots until released
    app = create_app(classifier.settings, classifier)
    with serve_in_thread(app) as url, ThreadPoolExecutor(12) as pool:
        accepted = [pool.submit(httpx.post, f"{url}/classify", json={"description": f"{WIZARD['description']} {i}"},
                                timeout=60) for i in range(2)]
        assert held.wait_started(2)
        flood = list(pool.map(lambda i: httpx.post(f"{url}/classify", json=WIZARD, timeout=30), range(10)))
        health = httpx.get(f"{url}/health", timeout=5)
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        held.release()
        accepted = [f.result() for f in accepted]
    app.state.runtime.retire()
    assert [r.status_code for r in flood] == [503] * 10
    assert all(r.headers["retry-after"] == "1" and "capacity" in r.json()["error"] for r in flood)
    assert health.status_code == 200 and 'moviegenre_refused_requests_total{reason="overloaded"} 10.0' in metrics
    assert [r.status_code for r in accepted] == [200, 200]


def test_a_rate_limit_lets_n_through_and_answers_the_next_with_429(small_index_dir):
    client = make_client(small_index_dir, rate_limit="3/day")
    assert [client.post("/classify", json=WIZARD).status_code for _ in range(3)] == [200] * 3
    refused = client.post("/classify", json=WIZARD)
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 86400
    assert "rate limit of 3 per 1 day" in refused.json()["error"]
    assert client.get("/health").status_code == 200 and client.get("/readyz").status_code == 200


def test_made_up_keys_share_their_address_allowance_and_a_valid_key_has_its_own(small_index_dir):
    client = make_client(small_index_dir, rate_limit="3/day", feedback_token="alice:t0ken-alice")
    assert [client.post("/classify", json=WIZARD).status_code for _ in range(3)] == [200] * 3
    for made_up in ("another", "Bearer-ish", uuid.uuid4().hex):  # a new key per request buys nothing
        assert client.post("/classify", json=WIZARD, headers={"X-API-Key": made_up}).status_code == 429
    assert client.post("/classify", json=WIZARD, headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}) \
        .status_code == 429
    # an editor's token is a key somebody was given: its own allowance, whichever address it comes from
    alice = {"X-API-Key": "t0ken-alice"}
    assert [client.post("/classify", json=WIZARD, headers=alice).status_code for _ in range(3)] == [200] * 3
    assert client.post("/classify", json=WIZARD, headers=alice).status_code == 429


def test_with_an_api_key_a_wrong_key_is_counted_against_its_address(small_index_dir):
    client = make_client(small_index_dir, rate_limit="3/day", api_key="s3cret-key")
    wrong = [client.post("/classify", json=WIZARD, headers={"X-API-Key": f"guess-{i}"}).status_code
             for i in range(4)]
    assert wrong == [401, 401, 401, 429]  # guessing keys spends the address's allowance, then is refused
    right = {"X-API-Key": "s3cret-key"}
    assert [client.post("/classify", json=WIZARD, headers=right).status_code for _ in range(4)] == [200] * 3 + [429]


def test_readyz_is_503_until_an_index_is_loaded_and_livez_is_always_200(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", llm_backend="none", admin_token="adm1n")
    with TestClient(create_app(settings)) as client:
        assert client.get("/livez").json() == {"status": "alive"}
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and "make build-index" in not_ready.json()["error"]
        build_index(write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120)), settings.index.dir, settings,
                    progress=False)
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).status_code == 200
        assert client.get("/readyz").json() == {"status": "ready", "degraded": []}


def test_readyz_can_wait_for_the_multilingual_part(tmp_path):
    models = Settings().index.exported_models()
    shutil.copytree(models / "all-MiniLM-L6-v2", tmp_path / "models" / "all-MiniLM-L6-v2")
    settings = Settings(index_dir=tmp_path / "index", llm_backend="none", models_dir=tmp_path / "models",
                        multilingual_model="multilingual-e5-small", ready_needs_multilingual=True)
    build_index(write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120)), settings.index.dir, settings,
                progress=False, parts=["english"])
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and "multilingual part is building" in response.json()["error"]
        assert client.post("/classify", json=WIZARD).status_code == 200  # serving English meanwhile


def test_classify_file_writes_its_counts_for_the_textfile_collector(tmp_path, small_index_dir):
    rows = [{"plot": WIZARD["description"]}, {"plot": ""}, {"plot": "A detective hunts a killer."}]
    source = tmp_path / "films.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, "-m", "service.cli", "classify-file", str(source), "-o",
                           str(tmp_path / "out.csv"), "--quiet", "--metrics-file", str(tmp_path / "batch.prom")],
                          env=os.environ | {"MOVIEGENRE_INDEX_DIR": str(small_index_dir), "LLM_BACKEND": "none"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "batch.prom").read_text()
    assert 'moviegenre_batch_rows_total{outcome="classified"} 2.0' in text
    assert 'moviegenre_batch_rows_total{outcome="rejected"} 1.0' in text


def test_the_benchs_metrics_cost_row_records_requests_as_the_service_does():
    """make bench's last row (it once ended the whole bench with a traceback after every other row had run)."""
    from service.bench import metrics_cost_us

    assert metrics_cost_us(Settings(), requests=50) > 0


def _builds_of(pid: int) -> list[int]:
    """The `build-index` processes `pid` started (read from /proc), alive and not yet reaped."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"build-index" in command:
            found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("stopped", ["while it waits for the English part", "while it serves"])
def test_a_serve_stopped_by_sigterm_stops_the_index_build_it_started(small_index_dir, tmp_path, stopped):
    """`serve --build-missing` on an empty index, stopped with SIGTERM as an orchestrator or `kill` stops it: no
    `build-index` is left running, before it serves (Python's default for SIGTERM skipped every cleanup) or after
    (uvicorn raises SIGTERM again once it has shut down)."""
    from .processes import eventually, free_port

    corpus = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 600))
    index_dir, port = tmp_path / "index", free_port()
    env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(index_dir), "LLM_BACKEND": "none", "MOVIEGENRE_PORT": str(port),
                        # a multilingual part to build after the English one (its model exported for small_index_dir)
                        "MOVIEGENRE_MULTILINGUAL_MODEL": "multilingual-e5-small"}
    serve = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--build-missing", "--data", str(corpus)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    build = None
    try:
        build = eventually(lambda: _builds_of(serve.pid), limit_s=60)[0]
        if stopped == "while it serves":
            from .processes import wait_ready

            wait_ready(serve, f"http://127.0.0.1:{port}", limit_s=180)
        else:
            assert not (index_dir / "manifest.json").exists()  # the English part is still being built
        assert _running(build), "the build ended before the service was stopped: nothing to prove"
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) != 0
        assert not _running(build)
    finally:
        serve.kill()
        serve.wait(timeout=30)
        if build is not None and _running(build):  # a failed test leaves no build behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(build, signal.SIGKILL)
