"""Where a description's CPU goes, stage by stage, and what the serving process's memory is made of:
`moviegenre bench --profile` prints both tables and docs/benchmarks.md keeps them.

CPU. The classifier runs as it serves, with its stages' functions wrapped in a clock of CPU time: each stage is
charged the CPU time of the thread that runs it (`time.thread_time`), without the stages it calls, so the stages add
up. Three stages run on threads of their own while nothing else runs — language detection (lingua's), the embedding
(a text a core) and the search (split across the cores) — and are charged the whole process's CPU time while they
run. What no stage accounts for (the pipeline's own Python) is "the rest"; the total is the process's CPU time.
The HTTP layer (uvicorn, FastAPI, pydantic, JSON) is measured on a served process: what a request costs its CPU
beyond the same work in process.

Memory. A fresh process loads the service's parts one by one, as loading.py does, and the resident set each adds is
its share (some parts share pages, so the order matters a little); the rest of a served process's memory after a
load is what requests leave behind (ONNX Runtime's arenas, the heap of the threads)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STAGES = ("language", "tokenise", "embed", "search", "corrections beside", "vote", "TF-IDF features", "heads",
          "blend", "recognise", "answer", "labels", "serialise")


class StageClock:
    """CPU time per stage, exclusive of the stages a stage calls (a stack per thread)."""

    def __init__(self):
        self.spent: dict[str, float] = defaultdict(float)
        self._local = threading.local()
        self._lock = threading.Lock()

    def timed(self, stage: str, function: Callable, whole_process: bool = False) -> Callable:
        """`whole_process`: charged the process's CPU time while it runs (a stage that runs threads of its own)."""
        clock = process_cpu_s if whole_process else time.thread_time

        def run(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append(0.0)  # what the stages it calls take
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent = clock() - started
                inner = stack.pop()
                if stack:
                    stack[-1] += spent
                with self._lock:
                    self.spent[stage] += spent - inner

        return run

    def wrap(self, owner, attribute: str, stage: str, whole_process: bool = False) -> None:
        setattr(owner, attribute, self.timed(stage, getattr(owner, attribute), whole_process))


def process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


@contextmanager
def clocked(classifier) -> Iterator[StageClock]:
    """The classifier's stages wrapped in one clock (module functions put back afterwards)."""
    import service.classifier as composed
    import service.pipeline.retrieve as retrieving
    import service.pipeline.vote as voting

    clock = StageClock()
    saved = {name: getattr(composed, name) for name in ("recognised", "drafted")}
    vote, search = voting.vote, retrieving.search
    voting.vote = clock.timed("vote", vote)
    retrieving.search = clock.timed("search", search, whole_process=True)
    for route in classifier.routes():
        _wrap_route(clock, route)
    if classifier.detector is not None:
        clock.wrap(classifier.detector, "detect_many", "language", whole_process=True)
    if classifier.corrections is not None:
        clock.wrap(classifier.corrections, "beside", "corrections beside")
    clock.wrap(classifier.label_scorer, "answer", "labels")
    composed.recognised = clock.timed("recognise", saved["recognised"])
    composed.drafted = clock.timed("answer", saved["drafted"])
    try:
        yield clock
    finally:
        for name, function in saved.items():
            setattr(composed, name, function)
        voting.vote, retrieving.search = vote, search


def _wrap_route(clock: StageClock, route) -> None:
    clock.wrap(route.embedder.tokenizer, "encode", "tokenise")
    clock.wrap(route.embedder, "embed", "embed", whole_process=True)
    if route.scorer is not None:
        heads = route.scorer.heads
        clock.wrap(route.scorer, "blend_scores", "blend")
        if heads.text_features is not None:
            clock.wrap(heads.text_features, "transform", "TF-IDF features")
            clock.wrap(heads.text, "sparse_probabilities", "heads")
        clock.wrap(heads.embedding, "probabilities", "heads")


def cpu_table(classifier, texts: list[str], batch: int = 32, singles: int = 200) -> dict[str, dict[str, float]]:
    """ms of CPU per description, per stage: described in batches of `batch` (as /classify/batch), and one by one
    (as /classify). The classifier is left with its stages wrapped: use one made for this."""
    from service.api.models import ClassifyResponse

    def serialise(results) -> None:
        for c in results:
            ClassifyResponse(genres=c.genres, scores={g: round(s, 4) for g, s in c.scores.items() if s > 0},
                             backend=c.backend, latency_ms=0.0, language=c.language, confidence=c.confidence,
                             confidence_reason=c.confidence_reason, notes=c.notes).model_dump_json()

    table = {}
    with clocked(classifier) as clock:
        answer = clock.timed("serialise", serialise)
        for name, size, count in (("batched", batch, len(texts)), ("single", 1, singles)):
            classifier.draft(texts[:size])  # warm
            clock.spent.clear()
            started = process_cpu_s()
            for i in range(0, count, size):
                answer(classifier.draft(texts[i:i + size]))
            total = (process_cpu_s() - started) * 1000 / count
            stages = {stage: round(clock.spent.get(stage, 0.0) * 1000 / count, 3) for stage in STAGES}
            table[name] = stages | {"the rest": round(total - sum(stages.values()), 3), "total": round(total, 3)}
    return table


# --- memory --------------------------------------------------------------------------------------------------------

SCRIPTS = ("A young wizard goes to a school of magic.", "Ein junger Zauberer geht auf eine Zauberschule.",
           "Молодой волшебник учится в школе магии.", "一个年轻的巫师去魔法学校。", "若い魔法使いが魔法学校に通う。",
           "ساحر شاب يذهب إلى مدرسة السحر.", "एक युवा जादूगर जादू के स्कूल जाता है।", "젊은 마법사가 마법 학교에 간다.",
           "Ένας νεαρός μάγος πηγαίνει σε σχολή μαγείας.", "נער קוסם הולך לבית ספר לקסמים.")


def memory_steps(settings) -> dict[str, float]:
    """MB of resident memory each part adds, loaded in turn in this (fresh) process, as loading.py loads them."""
    from service.memory import release_freed_heap, resident_mb, return_large_blocks

    return_large_blocks()  # as loading.py does
    steps: dict[str, float] = {}
    last = resident_mb()

    def step(name: str) -> None:
        nonlocal last
        release_freed_heap()  # what loading freed, handed back as the service does once loaded
        now = resident_mb()
        steps[name] = round(now - last, 1)
        last = now

    steps["Python and the interpreter"] = round(last, 1)
    import faiss  # noqa: F401
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    step("numpy, ONNX Runtime, FAISS (libraries)")
    import service.api.app  # noqa: F401
    step("the service's modules, FastAPI, pydantic")
    from service.embedding import load_embedder
    from service.heads import load_scorer
    from service.loading import detector_for
    from service.recognition import Recogniser
    from service.store import load_parts, read_manifest

    models = {p: m for p, m in settings.index.part_models().items()
              if p in (read_manifest(settings.index.dir) or {}).get("parts", {})}
    embedders = {}
    for part, model in models.items():
        embedders[part] = load_embedder(settings.index.exported_models(), model, settings.index.embed_workers)
        embedders[part].embed(["warm-up"])
        step(f"{model}: int8 ONNX session and tokenizer")
    parts = load_parts(settings.index.dir, {p: (m, embedders[p].dim) for p, m in models.items()})
    step("the reference's films (Python objects, shared by the parts)")
    for part, index in parts.items():
        index.search(embedders[part].embed(["warm-up"]), 25)
        load_scorer(index, part)
        step(f"{part} part: FAISS vectors (memory-mapped, read) and trained heads")
    detector = detector_for(settings.index.multilingual_model)
    for text in SCRIPTS:
        detector.detect(text)
    step("lingua: its models of every script")
    Recogniser(parts["english"].films).warm_up()
    step("recognition: the films' names and series places")
    return steps


def memory_table(settings) -> dict[str, float]:
    """memory_steps in a fresh process (this one has loaded too much already)."""
    code = ("import json, sys; from service.settings import Settings; from service.profiling import memory_steps; "
            "print(json.dumps(memory_steps(Settings())))")
    env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(settings.index.dir), "LLM_BACKEND": "none"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the served process --------------------------------------------------------------------------------------------

def served_cost(settings, texts: list[str], batch: int = 32, singles: int = 200) -> dict[str, float]:
    """A served process (`moviegenre serve`): its CPU ms per description in batches of `batch` and one by one over
    HTTP, and its resident memory after them."""
    from service.bench import _batch_per_s, _rss_mb, _timed_posts, cpu_ms_each, running_service

    with running_service(settings) as (url, pid):
        _batch_per_s(url, texts, batches=2, size=batch)  # warm
        batches = len(texts) // batch
        batched = cpu_ms_each(pid, lambda: _batch_per_s(url, texts, batches=batches, size=batch), batches * batch)
        single = cpu_ms_each(pid, lambda: _timed_posts(url, texts[:singles]), singles)
        return {"batched": round(batched, 3), "single": round(single, 3), "rss_mb": round(_rss_mb(pid), 1)}


def profile(settings, descriptions: int = 640) -> dict:
    """Both tables: CPU per description by stage (in process, and what HTTP adds on a served process), and the
    resident memory by part (what a served process holds beyond the parts: what requests left)."""
    from service.bench import _descriptions
    from service.loading import load_classifier

    texts = _descriptions(settings)[:descriptions]
    classifier = load_classifier(settings.replace(llm_backend="none"))
    classifier.warm_up()
    cpu = cpu_table(classifier, texts)
    classifier.close()
    served = served_cost(settings, texts)
    for way in ("batched", "single"):
        cpu[way]["HTTP: uvicorn, FastAPI, pydantic, JSON"] = round(served[way] - cpu[way]["total"], 3)
        cpu[way]["served, in all"] = served[way]
    memory = memory_table(settings)
    memory["what requests leave (ONNX Runtime's arenas, the threads' heaps), and the rest"] = round(
        served["rss_mb"] - sum(memory.values()), 1)
    memory["served process, after the requests"] = served["rss_mb"]
    return {"cpu_ms_per_description": cpu, "rss_mb": memory}
