"""Where a run keeps its classified chunks until the output is whole, and how the output is assembled.

OUTPUT.partial/ holds job.json (what the run is: input, text column, chunk size, the index and every setting
that changes an answer) and one Parquet file per finished chunk, each written atomically, so a chunk file is
whole or absent. A rerun of the same job resumes after the last finished chunk; a rerun of another job
(another index build, another setting) discards the chunks and says why.

The output's columns are the union of every record's columns in first-seen order, then the answer's. A
column keeps its type where the format can hold it; one whose type differs between chunks (an int in one, a
string in another) is widened (ints and floats to floats, anything else to text) and reported. The output
and its sidecar of rejected rows are assembled under temporary names inside OUTPUT.partial/ and renamed into
place: a half-written file never carries OUTPUT's name, and a killed assembly leaves nothing beside it.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from service.atomic import atomic_file, atomic_path, write_json
from service.batch.labelling import ADDED, ANSWER_SCHEMA, INPUT_PREFIX, as_text, text_array


# sees each part of the output as it is written: the rows' numbers in the file, and the part as a table of the
# output's columns
Tap = Callable[[list[int], pa.Table], None]


@dataclass
class Summary:
    classified: int
    rejected: int
    output: Path
    sidecar: Path
    actors: int | None = None  # Ray: the classifying actors
    widened: dict[str, str] = field(default_factory=dict)  # column → the type its conflicting values were given
    resumed_rows: int = 0  # rows a previous run of the same job had done
    notes: list[str] = field(default_factory=list)  # what the person should know about the run


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejected.jsonl")


class ChunkStore:
    def __init__(self, output: Path, job: dict):
        self.output = output
        self.dir = output.with_name(output.name + ".partial")
        self.job = job
        self.discarded: str | None = None  # why the leftovers of a previous run were not taken over

    def resume(self) -> int:
        """How many chunks are already done for this job (0 for another job's leftovers, which are removed and
        `discarded` says why)."""
        try:
            previous = json.loads((self.dir / "job.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            previous = None
        except (OSError, ValueError):
            previous = {}
        if previous != self.job:
            if previous is not None:
                changed = sorted(k for k in set(previous) | set(self.job) if previous.get(k) != self.job.get(k))
                self.discarded = f"the previous run's chunks were for another job (changed: {', '.join(changed)})"
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            write_json(self.dir / "job.json", self.job)
            return 0
        done = 0
        while self._chunk(done).exists():
            done += 1
        return done

    def put(self, index: int, table: pa.Table, first_row: int) -> None:
        rows = pa.array(range(first_row, first_row + len(table)), pa.int64())
        with atomic_path(self._chunk(index)) as tmp:
            pq.write_table(table.add_column(0, "_row", rows), tmp)

    def assemble(self, fmt: str, tap: Tap | None = None) -> Summary:
        """The output and its sidecar, in place; `tap` sees each part of the output as it is written."""
        schema, widened = self._input_schema()
        summary = Summary(0, 0, self.output, sidecar_path(self.output), widened=widened)
        with atomic_file(summary.sidecar, folder=self.dir) as rejected, atomic_path(self.output, self.dir) as out:
            WRITERS[fmt](out, schema, self._answers(schema, rejected, summary, tap))
        shutil.rmtree(self.dir)
        return summary

    def _chunk(self, index: int) -> Path:
        return self.dir / f"chunk-{index:07d}.parquet"

    def _chunk_files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk-*.parquet"))

    def _input_schema(self) -> tuple[pa.Schema, dict[str, str]]:
        """The input columns of all chunks in first-seen order, each with one type for the whole output."""
        types: dict[str, list[pa.DataType]] = {}
        for path in self._chunk_files():
            for column in pq.read_schema(path):
                if column.name.startswith(INPUT_PREFIX):
                    types.setdefault(column.name.removeprefix(INPUT_PREFIX), []).append(column.type)
        fields, widened = [], {}
        for name, seen in types.items():
            kind = _common_type(seen)
            if len({t for t in seen if not pa.types.is_null(t)}) > 1:
                widened[name] = str(kind)
            fields.append(pa.field(name, kind))
        return pa.schema(fields), widened

    def _answers(self, schema: pa.Schema, rejected, summary: Summary, tap: Tap | None) -> Iterator[pa.Table]:
        """The output chunk by chunk, as tables of the output's columns; rejected rows go to the sidecar."""
        for path in self._chunk_files():
            chunk = pq.read_table(path)
            flags, records = chunk.column("_rejected").to_pylist(), chunk.column("_record").to_pylist()
            for row, reason, record in zip(chunk.column("_row").to_pylist(), flags, records):
                if reason is not None:
                    rejected.write(json.dumps({"row": row, "reason": reason,
                                               "record": json.loads(record) if record else None},
                                              ensure_ascii=False) + "\n")
                    summary.rejected += 1
            kept = chunk.filter(pa.array([reason is None for reason in flags]))
            summary.classified += len(kept)
            table = _output_table(kept, schema)
            if tap is not None:
                tap(kept.column("_row").to_pylist(), table)
            yield table


def _common_type(types: list[pa.DataType]) -> pa.DataType:
    known = list(dict.fromkeys(t for t in types if not pa.types.is_null(t)))
    if not known:
        return pa.string()
    if len(known) == 1:
        return known[0]
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in known):
        return pa.float64()
    return pa.string()


def _conform(column: pa.ChunkedArray | None, kind: pa.DataType, rows: int) -> pa.Array:
    if column is None:
        return pa.nulls(rows, kind)
    if column.type == kind:
        return column.combine_chunks()
    if pa.types.is_string(kind):
        return text_array(column.to_pylist())
    return column.cast(kind).combine_chunks()


def output_name(name: str) -> str:
    """An input column named like an added one is kept as input_<name>."""
    return f"input_{name}" if name in ADDED else name


def _output_table(chunk: pa.Table, schema: pa.Schema) -> pa.Table:
    names = set(chunk.column_names)
    columns = {output_name(f.name): _conform(chunk.column(INPUT_PREFIX + f.name) if INPUT_PREFIX + f.name in names
                                             else None, f.type, len(chunk)) for f in schema}
    return pa.table(columns | {name: chunk.column(name) for name in ADDED})


def _write_csv(path: Path, schema: pa.Schema, chunks: Iterator[pa.Table]) -> None:
    """Every value as text: genres joined by '|', nested values as JSON, binary as base64."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([output_name(f.name) for f in schema] + list(ADDED))
        for table in chunks:
            for row in table.to_pylist():
                writer.writerow([_csv_value(key, value) for key, value in row.items()])


def _csv_value(key: str, value):
    if value is None:
        return ""
    if key == "genres":
        return "|".join(value)
    return as_text(value)


def _write_jsonl(path: Path, schema: pa.Schema, chunks: Iterator[pa.Table]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for table in chunks:
            for row in table.to_pylist():
                row["scores"] = json.loads(row["scores"])
                f.write(json.dumps(row, ensure_ascii=False, default=as_text) + "\n")


def _write_parquet(path: Path, schema: pa.Schema, chunks: Iterator[pa.Table]) -> None:
    """The input columns with their types; scores as a JSON string (their keys vary from row to row)."""
    full = pa.schema([pa.field(output_name(f.name), f.type) for f in schema] +
                     [ANSWER_SCHEMA.field(name) for name in ADDED])
    with pq.ParquetWriter(path, full) as writer:
        for table in chunks:
            writer.write_table(table.cast(full))


WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}
