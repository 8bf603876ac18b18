"""Where a run keeps its classified chunks until the output is whole, and how the output is assembled.

OUTPUT.partial/ holds job.json (what the run is: input, text column, chunk size, models) and one Parquet
file per finished chunk, each written to a temporary name and renamed, so a chunk file is whole or absent.
A rerun of the same job resumes after the last finished chunk. The output and its sidecar of rejected rows
are assembled under temporary names and renamed into place: a half-written file never carries OUTPUT's name.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from service.batch.labelling import ADDED


@dataclass
class Summary:
    classified: int
    rejected: int
    output: Path
    sidecar: Path
    actors: int | None = None  # Ray: the classifying actors


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejected.jsonl")


class ChunkStore:
    def __init__(self, output: Path, job: dict):
        self.output = output
        self.dir = output.with_name(output.name + ".partial")
        self.job = job

    def resume(self) -> int:
        """How many chunks are already done for this job (0 for another job's leftovers, which are removed)."""
        try:
            same = json.loads((self.dir / "job.json").read_text(encoding="utf-8")) == self.job
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            _write_atomically(self.dir / "job.json", json.dumps(self.job, indent=1).encode("utf-8"))
            return 0
        done = 0
        while self._chunk(done).exists():
            done += 1
        return done

    def put(self, index: int, table: pa.Table, first_row: int) -> None:
        rows = pa.array(range(first_row, first_row + len(table)), pa.int64())
        tmp = self._chunk(index).with_suffix(".tmp")
        pq.write_table(table.add_column(0, "_row", rows), tmp)
        os.replace(tmp, self._chunk(index))

    def assemble(self, fmt: str) -> Summary:
        sidecar = sidecar_path(self.output)
        out_tmp, side_tmp = _temporary(self.output), _temporary(sidecar)
        counts = {"classified": 0, "rejected": 0}
        try:
            with side_tmp.open("w", encoding="utf-8") as rejected:
                WRITERS[fmt](out_tmp, self._answers(rejected, counts))
            os.replace(out_tmp, self.output)
            os.replace(side_tmp, sidecar)
        finally:
            out_tmp.unlink(missing_ok=True)
            side_tmp.unlink(missing_ok=True)
        shutil.rmtree(self.dir)
        return Summary(counts["classified"], counts["rejected"], self.output, sidecar)

    def _chunk(self, index: int) -> Path:
        return self.dir / f"chunk-{index:07d}.parquet"

    def _chunk_files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk-*.parquet"))

    def _answers(self, rejected, counts: dict) -> Iterator[list[dict]]:
        """The output rows chunk by chunk; rejected rows go to the sidecar on the way."""
        for path in self._chunk_files():
            rows = []
            for row in pq.read_table(path).to_pylist():
                record = json.loads(row["_record"]) if row["_record"] is not None else None
                if row["_rejected"] is not None:
                    rejected.write(json.dumps({"row": row["_row"], "reason": row["_rejected"], "record": record},
                                              ensure_ascii=False) + "\n")
                    counts["rejected"] += 1
                    continue
                rows.append(_with_answer(record, row))
                counts["classified"] += 1
            yield rows


def _with_answer(record: dict, row: dict) -> dict:
    """The input's columns, then the answer's; an input column named like an added one is kept as input_<name>."""
    out = {(f"input_{k}" if k in ADDED else k): v for k, v in record.items()}
    return out | {"genres": row["genres"], "scores": json.loads(row["scores"]), "backend": row["backend"],
                  "language": row["language"]}


def _write_csv(path: Path, chunks: Iterator[list[dict]]) -> None:
    """Genres joined by '|', scores and any nested value as JSON; the columns are those of the first row."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = None
        for rows in chunks:
            for row in rows:
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(row), restval="", extrasaction="ignore")
                    writer.writeheader()
                writer.writerow({k: _csv_value(k, v) for k, v in row.items()})


def _csv_value(key: str, value):
    if key == "genres":
        return "|".join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _write_jsonl(path: Path, chunks: Iterator[list[dict]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for rows in chunks:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _write_parquet(path: Path, chunks: Iterator[list[dict]]) -> None:
    """Scores as a JSON string (their keys vary from row to row). The tables are cast to one schema as they
    come; a column first seen empty takes the type it has later."""
    writer = None
    try:
        for rows in chunks:
            if not rows:
                continue
            table = pa.Table.from_pylist([row | {"scores": json.dumps(row["scores"])} for row in rows])
            if writer is None:
                writer = pq.ParquetWriter(path, _without_nulls(table.schema))
            writer.write_table(table.select(writer.schema.names).cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(pa.table({}), path)


def _without_nulls(schema: pa.Schema) -> pa.Schema:
    return pa.schema([field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in schema])


WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = _temporary(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
