"""One chunk of records → one table of answers: what every engine (this machine, a Ray actor) runs.

A classified chunk holds the answer columns and, beside them, every input column of its records with its own
type (Parquet's dates, decimals and binary stay what they are), named with INPUT_PREFIX. A column that holds
values of two types within the chunk (an int here, a string there) is kept as text. The sidecar needs a
rejected record as it was read: `_record` holds it as JSON."""
from __future__ import annotations

import base64
import json

import pyarrow as pa

from service.batch.records import Item
from service.text import is_blank

# the answer columns of a classified chunk; `_row` (the record's 1-based row in the file) is added by the
# engine, which is the one that knows where the chunk starts
ANSWER_SCHEMA = pa.schema([
    ("_rejected", pa.string()),  # why the record was not classified; null when it was
    ("_record", pa.string()),    # a rejected record as read, as JSON (for the sidecar); null otherwise
    ("genres", pa.list_(pa.string())),
    ("scores", pa.string()),     # JSON object, highest first
    ("backend", pa.string()),
    ("language", pa.string()),
])
ADDED = ("genres", "scores", "backend", "language")
INPUT_PREFIX = "in:"


def classify_items(classifier, items: list[Item], text_column: str, max_chars: int,
                   types: dict | None = None) -> pa.Table:
    """The records classified together; with the LLM on, it is asked about all of them at once, LLM_CONCURRENCY
    in flight (llm/gate.py). `types`: the input columns' own types, where the file states them."""
    texts, positions, reasons = [], [], [None] * len(items)
    for i, (record, problem) in enumerate(items):
        reasons[i] = problem or _unusable(record, text_column, max_chars)
        if reasons[i] is None:
            texts.append(record[text_column])
            positions.append(i)
    results = classifier.classify_many(texts) if texts else []
    answers: list = [None] * len(items)
    for i, result in zip(positions, results):
        answers[i] = result
    columns = {"_rejected": reasons,
               "_record": [_as_json(record) if reason else None for (record, _), reason in zip(items, reasons)],
               "genres": [a.genres if a else None for a in answers],
               "scores": [json.dumps({g: round(s, 4) for g, s in a.scores.items() if s > 0}) if a else None
                          for a in answers],
               "backend": [a.backend if a else None for a in answers],
               "language": [a.language if a else None for a in answers]}
    table = pa.table(columns, schema=ANSWER_SCHEMA)
    records = [record if reason is None else {} for (record, _), reason in zip(items, reasons)]
    for name, array in input_columns(records, types or {}).items():
        table = table.append_column(INPUT_PREFIX + name, array)
    return table


def input_columns(records: list[dict], types: dict) -> dict[str, pa.Array]:
    """Every key of the records, in first-seen order, as a typed column (null where a record lacks it)."""
    names = list(dict.fromkeys(key for record in records for key in record))
    return {name: typed_column([record.get(name) for record in records], types.get(name)) for name in names}


def typed_column(values: list, kind: pa.DataType | None = None) -> pa.Array:
    """The values with their stated type, or the one Arrow infers from all of them; text when they disagree
    (an int and a string)."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return text_array(values)


def text_array(values: list) -> pa.Array:
    """The values as text (as_text), nulls kept."""
    return pa.array([None if v is None else as_text(v) for v in values], pa.string())


def as_text(value) -> str:
    """A value where only text fits (a CSV field, a column widened to text): nested values as JSON, binary as
    base64, dates and decimals as their ISO / exact text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dict, list, bool)) or value is None:
        return json.dumps(value, ensure_ascii=False, default=as_text)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _unusable(record: dict, text_column: str, max_chars: int) -> str | None:
    text = record.get(text_column)
    if text is None:
        return f"empty: no {text_column!r} value"
    if not isinstance(text, str):
        return f"not text: {text_column!r} is a {type(text).__name__}"
    if is_blank(text):
        return f"empty: {text_column!r} is blank"
    if len(text) > max_chars:
        return f"too long: {len(text):,} characters (the limit is {max_chars:,})"
    return None


def _as_json(record: dict | None) -> str | None:
    return None if record is None else json.dumps(record, ensure_ascii=False, default=as_text)
