"""An LLM's usable answers kept by model (its server among it) and prompt: a repeated description costs no second call.

In the service, an LRU in memory (LLM_CACHE_SIZE answers). For calibration and evaluation, also a SQLite
file, so a rerun or a changed grid makes no new call. A cached answer takes no place in the LLM's queue. Only
parsed, usable answers are kept: a failure, an empty, truncated or off-vocabulary answer is asked again next time.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from cachetools import LRUCache


class AnswerCache:
    """A model's usable answers by prompt: `cached()` looks one up (no call, no wait), `keep()` keeps one. Keyed by
    the model's identity (a pool's is its first server's: llm/pool.py), so a pool's servers share one cache. Used on
    the LLM gate's event loop (llm/gate.py); stats() is read from other threads."""

    def __init__(self, identity: dict[str, str], size: int, path: Path | None = None):
        self.identity = identity
        self._memory: LRUCache = LRUCache(maxsize=size)
        self._lock = threading.Lock()
        self._disk = _open(path) if path else None
        self.hits = self.misses = 0

    def key(self, messages: list[dict[str, str]], schema: dict) -> str:
        return hashlib.sha256(json.dumps([self.identity, messages, schema], sort_keys=True,
                                         ensure_ascii=False).encode("utf-8")).hexdigest()

    def cached(self, key: str) -> list[str] | None:
        """The answer kept under `key`, counted as a hit; None (a miss) when there is none."""
        with self._lock:
            answer = self._memory.get(key)
            if answer is None and self._disk is not None:
                row = self._disk.execute("SELECT genres FROM answers_v2 WHERE key = ?", (key,)).fetchone()
                answer = json.loads(row[0]) if row else None
            if answer is None:
                self.misses += 1
                return None
            self.hits += 1
            self._memory[key] = answer
            return list(answer)

    def keep(self, key: str, answer: list[str]) -> None:
        """A parsed, usable answer (base.py parse_genres): only those are kept."""
        with self._lock:
            self._memory[key] = list(answer)
            if self._disk is not None:
                self._disk.execute("INSERT OR REPLACE INTO answers_v2 VALUES (?, ?)", (key, json.dumps(answer)))
                self._disk.commit()

    def forget(self) -> int:
        """The answers kept in memory dropped (their model is no longer served: llm/one_model.py); how many. The
        file a calibration or an evaluation keeps is by model name, as before, and stays."""
        with self._lock:
            dropped = len(self._memory)
            self._memory.clear()
            return dropped

    def stats(self) -> dict:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._memory),
                    "capacity": int(self._memory.maxsize)}

    def close(self) -> None:
        if self._disk is not None:
            with self._lock:
                self._disk.close()


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False)  # every use is under the backend's lock
    # v2: parsed genres keyed by server, model and prompt (v1 kept raw text by model alone)
    db.execute("CREATE TABLE IF NOT EXISTS answers_v2 (key TEXT PRIMARY KEY, genres TEXT NOT NULL)")
    return db
