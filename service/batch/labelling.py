"""One chunk of records → one table of answers: what every engine (this machine, a Ray actor) runs."""
from __future__ import annotations

import json

import pyarrow as pa

from service.batch.records import Item

# the columns of a classified chunk; `_row` (the record's 1-based row in the file) is added by the engine,
# which is the one that knows where the chunk starts
CHUNK_SCHEMA = pa.schema([
    ("_record", pa.string()),    # the record as it was read, as JSON: every column passes through
    ("_rejected", pa.string()),  # why the record was not classified; null when it was
    ("genres", pa.list_(pa.string())),
    ("scores", pa.string()),     # JSON object, highest first
    ("backend", pa.string()),
    ("language", pa.string()),
])
ADDED = ("genres", "scores", "backend", "language")


def classify_items(classifier, items: list[Item], text_column: str, max_chars: int,
                   llm_batch: int | None = None) -> pa.Table:
    """`llm_batch`: with the LLM on, how many records share one LLM deadline (the classifier asks it about
    them concurrently, bounded by its pool)."""
    texts, positions, reasons = [], [], [None] * len(items)
    for i, (record, problem) in enumerate(items):
        reasons[i] = problem or _unusable(record, text_column, max_chars)
        if reasons[i] is None:
            texts.append(record[text_column])
            positions.append(i)
    step = llm_batch or len(texts) or 1
    results = [r for start in range(0, len(texts), step) for r in classifier.classify_many(texts[start:start + step])]
    answers: list = [None] * len(items)
    for i, result in zip(positions, results):
        answers[i] = result
    columns = {"_record": [_as_json(record) for record, _ in items], "_rejected": reasons,
               "genres": [a.genres if a else None for a in answers],
               "scores": [json.dumps({g: round(s, 4) for g, s in a.scores.items() if s > 0}) if a else None
                          for a in answers],
               "backend": [a.backend if a else None for a in answers],
               "language": [a.language if a else None for a in answers]}
    return pa.table(columns, schema=CHUNK_SCHEMA)


def _unusable(record: dict, text_column: str, max_chars: int) -> str | None:
    text = record.get(text_column)
    if text is None:
        return f"empty: no {text_column!r} value"
    if not isinstance(text, str):
        return f"not text: {text_column!r} is a {type(text).__name__}"
    if not text.strip():
        return f"empty: {text_column!r} is blank"
    if len(text) > max_chars:
        return f"too long: {len(text):,} characters (the limit is {max_chars:,})"
    return None


def _as_json(record: dict | None) -> str | None:
    # default=str: Parquet's dates and decimals pass through as their text
    return None if record is None else json.dumps(record, ensure_ascii=False, default=str)
