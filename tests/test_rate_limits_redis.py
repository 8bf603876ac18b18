"""Rate limits shared by replicas through a real Redis server that the tests start themselves (tests/redis_server.py):
two app instances ("replicas") count one allowance together; Redis killed, each counts alone meanwhile, says so
and shows it in the metrics; Redis back, the shared count takes over by itself."""
from __future__ import annotations

import pytest

from .conftest import make_client
from .redis_server import RedisServer

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}
SHOP, APP = {"X-API-Key": "k1"}, {"X-API-Key": "k2"}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture
def redis(redis_server):
    """The server running (a test may have killed it) and empty."""
    if redis_server.process.poll() is not None:
        redis_server.start()
    assert redis_server.command("FLUSHALL") == b"+OK\r\n"
    return redis_server


def replicas(index_dir, redis: RedisServer, rate: str, count: int = 2) -> list:
    return [make_client(index_dir, api_keys="shop:k1,app:k2", rate_limit=rate, rate_limit_storage=redis.uri)
            for _ in range(count)]


def statuses(answers) -> list[int]:
    return [a.status_code for a in answers]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_replicas_count_one_allowance_together(small_index_dir, redis):
    first, second = replicas(small_index_dir, redis, "4/day")
    shop = [replica.post("/classify", json=WIZARD, headers=SHOP) for replica in (first, second) * 3]
    app = [first.post("/classify", json=WIZARD, headers=APP),  # another consumer has an allowance of its own
           second.post("/classify/batch", json={"descriptions": [WIZARD["description"]] * 3}, headers=APP),
           first.post("/classify", json=WIZARD, headers=APP)]
    assert statuses(shop) == [200] * 4 + [429] * 2 and statuses(app) == [200, 200, 429]
    assert all(not answer.json()["notes"] for answer in shop[:4])
    assert b"api:shop" in redis.command("KEYS", "*")  # counted there, by consumer


def test_redis_killed_each_replica_counts_alone_and_back_the_shared_count_takes_over(small_index_dir, redis):
    first, second = replicas(small_index_dir, redis, "2/day")
    clock = FakeClock()
    for replica in (first, second):
        replica.app.state.admission.rate_limit.clock = clock
    redis.kill()
    outage = [first.post("/classify", json=WIZARD, headers=SHOP) for _ in range(3)] + \
        [second.post("/classify", json=WIZARD, headers=SHOP)]
    outage_metrics = first.get("/metrics").text
    redis.start()
    before_retry = first.post("/classify", json=WIZARD, headers=APP)  # the store is left alone for 5 s
    clock.now += 5
    back = [replica.post("/classify", json=WIZARD, headers=SHOP) for replica in (first, second, first)]
    back_metrics = first.get("/metrics").text
    assert statuses(outage) == [200, 200, 429, 200]  # two a replica: counted by each alone, never uncounted
    for answer in (outage[0], outage[1], outage[3], before_retry):
        assert any("rate-limit store failed" in note and "this process alone" in note
                   for note in answer.json()["notes"])
    assert "moviegenre_rate_limit_store_available 0.0" in outage_metrics
    assert 'moviegenre_degraded_requests_total{dependency="rate_limit_store"} 3.0' in outage_metrics
    assert statuses(back) == [200, 200, 429] and not any(answer.json()["notes"] for answer in back[:2])
    assert "moviegenre_rate_limit_store_available 1.0" in back_metrics
