"""Reading a catalogue file one record at a time, whatever its format (CSV, JSONL, Parquet), so memory
stays flat whatever its size. A record that cannot be read is a problem to report, not an error."""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

# "utf-8-sig": a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which is not part of the first column's name
CSV_ENCODING = "utf-8-sig"
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
TEXT_COLUMNS = ("plot", "description")  # taken, in this order, when no --text-column is given

# (record, problem): a record that could not be read is None, with the reason
Item = tuple[dict | None, str | None]


class CatalogueError(ValueError):
    """A file that cannot be classified at all (unknown format, no text column). `columns`: the file's columns,
    when the text column is what is missing."""

    def __init__(self, message: str, columns: list[str] | None = None):
        super().__init__(message)
        self.columns = columns


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise CatalogueError(f"{path.name}: the format is read from the extension, one of "
                             f"{', '.join(sorted(FORMATS))}") from None


def columns(path: Path) -> list[str]:
    """The column names: the CSV header, the Parquet schema, the keys of the first JSONL object."""
    fmt = file_format(path)
    if fmt == "csv":
        with path.open(encoding=CSV_ENCODING, errors="replace", newline="") as f:
            return next(csv.reader(f), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.names
    for record, _ in read_items(path):
        if record is not None:
            return list(record)
    return []


def column_types(path: Path) -> dict:
    """The columns' own types where the format states them (Parquet), so the output keeps them exactly."""
    if file_format(path) != "parquet":
        return {}
    import pyarrow.parquet as pq

    return {field.name: field.type for field in pq.ParquetFile(path).schema_arrow}


def text_column(path: Path, requested: str | None) -> str:
    names = columns(path)
    if requested:
        if requested not in names:
            raise CatalogueError(f"{path.name} has no column {requested!r} (columns: {', '.join(names)})", names)
        return requested
    by_lower = {name.lower(): name for name in names}
    for wanted in TEXT_COLUMNS:
        if wanted in by_lower:
            return by_lower[wanted]
    raise CatalogueError(f"{path.name} has neither a 'plot' nor a 'description' column: name the text column "
                         f"with --text-column (columns: {', '.join(names)})", names)


def count_rows(path: Path) -> int:
    """Rows in the file, for the progress bar: exact for Parquet and JSONL, lines for CSV (a quoted field
    may hold a line break: an estimate there)."""
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(0, lines - (file_format(path) == "csv"))


def read_items(path: Path, batch_rows: int = 1024) -> Iterator[Item]:
    fmt = file_format(path)
    if fmt == "csv":
        return _csv_items(path)
    if fmt == "jsonl":
        return _jsonl_items(path)
    return _parquet_items(path, batch_rows)


def decode_record(raw: dict[str, bytes | str | None]) -> Item:
    """A record whose fields arrived as bytes: every field must be UTF-8."""
    try:
        return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in raw.items()}, None
    except UnicodeDecodeError:
        return None, "undecodable: not UTF-8"


def parse_json_line(line: bytes | str) -> Item:
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return None, "undecodable: not UTF-8"
    if not line.strip():
        return None, "empty: a blank line"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return None, f"not a JSON object: {type(record).__name__}"
    return record, None


def _csv_items(path: Path) -> Iterator[Item]:
    csv.field_size_limit(sys.maxsize)  # a field too long to classify is reported, not a crash of the reader
    # surrogateescape keeps every byte: a field that is not UTF-8 is found and reported row by row
    with path.open(encoding=CSV_ENCODING, errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        for fields in reader:
            if not fields:  # a blank line holds no record (spreadsheets leave them at the end): not a row
                continue
            if len(fields) != len(header):
                yield None, f"malformed: {len(fields)} fields where the header has {len(header)}"
                continue
            yield decode_record(dict(zip(header, (v.encode("utf-8", "surrogateescape") for v in fields))))


def _jsonl_items(path: Path) -> Iterator[Item]:
    with path.open("rb") as f:
        for line in f:
            yield parse_json_line(line)


def _parquet_items(path: Path, batch_rows: int) -> Iterator[Item]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for record in batch.to_pylist():
            yield record, None
