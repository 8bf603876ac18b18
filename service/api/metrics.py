"""Prometheus metrics of one app (its own registry, so every app and every Ray Serve replica counts its own):
requests by path, method, status, backend, route and consumer (the API key's name, an editor's, "admin" or
"anonymous"), their latency, the LLM's outcomes (a busy LLM among them: the vote answered), lookups by source and
outcome, requests refused by load shedding or rate limits; read at scrape time from the runtime serving: the
index build and film count, the LLM answer cache's hits and misses, the LLM's queue.

The handlers put what they learned on `request.state` (backend, route, llm_outcomes, lookup_outcomes); the
RequestLog middleware, which times every request anyway, hands it here once the response has started."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from service.api.keys import ANONYMOUS, caller_of
from service.store import build_id_of, index_identity

LABELS = ("path", "method", "status", "backend", "route", "consumer")
# seconds: a lone English request takes ~10 ms here, a foreign one ~25, one with the LLM seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, state):
        self.state = state
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("moviegenre_requests", "HTTP requests", LABELS, registry=self.registry)
        self.latency = Histogram("moviegenre_request_seconds", "HTTP request latency", LABELS, buckets=BUCKETS,
                                 registry=self.registry)
        self.llm = Counter("moviegenre_llm_requests", "Descriptions the LLM was asked about, by outcome "
                           "(answered; busy: the vote answered at once; timed_out, unusable, unreachable, failed)",
                           ["backend", "outcome"],
                           registry=self.registry)
        self.lookups = Counter("moviegenre_lookups", "Lookups by source (imdb, tmdb, reference) and outcome "
                               "(found, not_found, failed, skipped)", ["source", "outcome"], registry=self.registry)
        self.refused = Counter("moviegenre_refused_requests", "Requests refused before classification, by reason "
                               "(overloaded, lookups_busy, rate_limited, slow_body)", ["reason"],
                               registry=self.registry)
        self.degraded = Counter("moviegenre_degraded_requests", "Requests answered without a dependency that failed, "
                                "by dependency (rate_limit_store, corrections_store)", ["dependency"],
                                registry=self.registry)
        self.registry.register(RuntimeCollector(state))
        self.registry.register(AdmissionCollector(state))

    def observe(self, scope: dict, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        backend = state.get("backend") or ""
        labels = (getattr(scope.get("route"), "path", None) or "other", scope["method"], str(status), backend,
                  state.get("route") or "", caller_of(scope, self.state.settings) or ANONYMOUS)
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        for outcome in state.get("llm_outcomes") or ():
            self.llm.labels(state.get("llm_backend") or backend, outcome).inc()
        for source, outcome in (state.get("lookup_outcomes") or {}).items():
            self.lookups.labels(source, outcome).inc()
        for dependency in state.get("degraded") or ():
            self.degraded.labels(dependency).inc()


class RuntimeCollector(Collector):
    """What the runtime serving now says about itself, read when Prometheus scrapes (a reload changes it)."""

    def __init__(self, state):
        self.state = state

    def collect(self):
        runtime = self.state.runtime
        ready = GaugeMetricFamily("moviegenre_ready", "1 when an index is loaded and serving")
        ready.add_metric([], 0 if runtime is None else 1)
        yield ready
        if runtime is None:
            return
        classifier = runtime.classifier
        manifest = classifier.index.manifest
        info = InfoMetricFamily("moviegenre_index", "The index build serving")
        info.add_metric([], {"build": build_id_of(manifest), "identity": index_identity(manifest),
                             "built_at": str(manifest.get("built_at", "")),
                             "multilingual": classifier.multilingual_status})
        yield info
        films = GaugeMetricFamily("moviegenre_index_films", "Films in the index serving")
        films.add_metric([], len(classifier.index))
        yield films
        if classifier.llm is not None:
            yield from _llm_families(classifier.llm)


def _llm_families(llm):
    """The answer cache's hits and misses; the queue; each server's calls in flight, answer time, whether it is set
    aside, and its calls by outcome."""
    stats, load = llm.stats(), llm.load()
    for name in ("hits", "misses"):
        family = CounterMetricFamily(f"moviegenre_llm_cache_{name}", f"LLM answer cache {name} (since the runtime "
                                     "serving was loaded)", labels=["backend"])
        family.add_metric([llm.name], stats[name])
        yield family
    waiting = GaugeMetricFamily("moviegenre_llm_waiting", "LLM questions waiting for a slot of any server",
                                labels=["backend"])
    waiting.add_metric([llm.name], load["waiting"])
    yield waiting
    by_server = ["backend", "server"]
    gauges = {"in_flight": GaugeMetricFamily("moviegenre_llm_in_flight", "LLM questions in flight, by server",
                                             labels=by_server),
              "answer_s": GaugeMetricFamily("moviegenre_llm_answer_seconds", "The mean time a server took to answer "
                                            "lately", labels=by_server),
              "set_aside": GaugeMetricFamily("moviegenre_llm_server_set_aside", "1 while a server of the pool is set "
                                             "aside (failed, another model, not read yet)", labels=by_server)}
    calls = CounterMetricFamily("moviegenre_llm_server_calls", "Questions each LLM server was asked, by outcome",
                                labels=["backend", "server", "outcome"])
    for server in load["servers"]:
        for name, gauge in gauges.items():
            gauge.add_metric([llm.name, server["address"]], float(server[name]))
        for outcome, count in server["calls"].items():
            calls.add_metric([llm.name, server["address"], outcome], count)
    yield from gauges.values()
    yield calls


class AdmissionCollector(Collector):
    """The lanes as they stand (api/admission.py): the CPU slots held, waited for, what one costs lately, bodies
    being read; the lookups' threads; whether the rate-limit store answers."""

    def __init__(self, state):
        self.state = state

    def collect(self):
        admission = getattr(self.state, "admission", None)
        if admission is None:
            return
        gauges = [("moviegenre_slots_in_flight", "Requests holding a CPU slot", admission.queue.in_flight),
                  ("moviegenre_slots_waiting", "Requests waiting for a CPU slot", admission.queue.waiting),
                  ("moviegenre_slot_seconds", "The mean time a request held its CPU slot lately (what the queue's "
                                              "bound is measured by)", admission.queue.slot_s),
                  ("moviegenre_requests_reading_body", "Requests whose body is being read", admission.reading),
                  ("moviegenre_lookups_in_flight", "Lookups waiting on IMDb and TMDb on their own threads",
                   admission.lookups.queue.in_flight),
                  ("moviegenre_lookups_waiting", "Lookups waiting for one of their threads",
                   admission.lookups.queue.waiting)]
        if admission.rate_limit is not None:
            gauges.append(("moviegenre_rate_limit_store_available", "1 when the rate-limit store answered the last "
                           "time it was asked; 0 while requests are counted by this process alone",
                           int(admission.rate_limit.available)))
        for name, help_text, value in gauges:
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge
