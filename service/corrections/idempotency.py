"""POST /feedback's `Idempotency-Key`, as payment APIs take it: the first request with a key stores a correction
and the key with it, in the same transaction; a retry with the same key and the same body stores nothing and is
answered with the first result; the same key with another body is refused. A key is its sender's (an editor's
name, or the page's client), and kept KEEP_HOURS: a retry after that is a new request."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.corrections.database import Transaction, stamp

KEEP_HOURS = 24
MAX_KEY_CHARS = 200


class KeyReused(Exception):
    def __init__(self, correction_id: int):
        super().__init__("this Idempotency-Key was first sent with another body (it stored correction "
                         f"{correction_id}): send a new key for a new correction")
        self.correction_id = correction_id


@dataclass(frozen=True)
class IdempotencyKey:
    principal: str     # whose key: 'editor:<name>', or 'page:<client>'
    key: str
    fingerprint: str   # of the request it came with

    @classmethod
    def of(cls, principal: str, key: str, request: dict) -> IdempotencyKey:
        canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return cls(principal, key, hashlib.sha256(canonical.encode()).hexdigest())


def checked(value: str) -> str:
    """The header's value, or ValueError saying what a key must be."""
    if not 1 <= len(value) <= MAX_KEY_CHARS or not all("!" <= ch <= "~" for ch in value):
        raise ValueError(f"an Idempotency-Key is 1 to {MAX_KEY_CHARS} printable ASCII characters without spaces "
                         "(a UUID, say)")
    return value


def stored(db: Transaction, key: IdempotencyKey, now: datetime) -> int | None:
    """The correction this key stored (within KEEP_HOURS); KeyReused when it came with another body."""
    row = db.execute("SELECT fingerprint, correction_id FROM idempotency_keys WHERE principal = ? AND key = ? "
                     "AND created_at >= ?", (key.principal, key.key, _cutoff(now))).fetchone()
    if row is None:
        return None
    if row[0] != key.fingerprint:
        raise KeyReused(row[1])
    return row[1]


def record(db: Transaction, key: IdempotencyKey, correction_id: int, now: datetime) -> None:
    """The key, for the correction just written (in the same transaction); expired keys are forgotten."""
    db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (_cutoff(now),))
    db.execute("INSERT INTO idempotency_keys (principal, key, fingerprint, correction_id, created_at) "
               "VALUES (?, ?, ?, ?, ?)", (key.principal, key.key, key.fingerprint, correction_id, stamp(now)))


def _cutoff(now: datetime) -> str:
    return stamp(now - timedelta(hours=KEEP_HOURS))

