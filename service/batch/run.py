"""`moviegenre classify-file`: a catalogue file in, the same file with genres out.

The engine classifies chunk after chunk: this machine's (below) reads the file itself and resumes after
the last finished chunk; Ray's (ray_engine.py) reads and classifies on a Ray cluster. Both hand their
chunks to the same ChunkStore, which assembles the output.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from service.batch.chunks import ChunkStore, Summary
from service.batch.labelling import classify_items
from service.batch.records import Item, file_format, read_items, text_column
from service.settings import Settings

# called with the rows just finished; the total is set first
Progress = Callable[[int], None]


@dataclass
class Job:
    source: Path
    output: Path
    text_column: str
    chunk_rows: int
    settings: Settings  # llm_backend "none" unless the LLM was asked for
    llm_batch: int | None

    @classmethod
    def of(cls, source: Path, output: Path, settings: Settings, column: str | None = None,
           chunk_rows: int = 2000, llm: bool = False) -> Job:
        file_format(output)  # an output format we cannot write is refused before any work
        settings = settings if llm else settings.model_copy(update={"llm_backend": "none"})
        return cls(source, output, text_column(source, column), chunk_rows, settings,
                   settings.llm_concurrency * 2 if llm else None)

    def fingerprint(self, engine: str) -> dict:
        """What must be the same for a rerun to take over the chunks of a previous one."""
        stat = self.source.stat()
        s = self.settings
        return {"engine": engine, "input": str(self.source.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "text_column": self.text_column, "chunk_rows": self.chunk_rows,
                "index": str(s.index_dir.resolve()), "models": s.part_models(), "llm": s.llm_backend}


def classify_file(job: Job, classifier, progress: Progress | None = None) -> tuple[Summary, int]:
    """On this machine. Returns the summary and the rows a previous run had already done."""
    store = ChunkStore(job.output, job.fingerprint("local"))
    done = store.resume()
    items = read_items(job.source)
    skipped = sum(1 for _ in islice(items, done * job.chunk_rows))
    if progress:
        progress(skipped)
    max_chars = job.settings.max_description_chars
    for index, chunk in enumerate(_chunks(items, job.chunk_rows), start=done):
        table = classify_items(classifier, chunk, job.text_column, max_chars, job.llm_batch)
        store.put(index, table, first_row=index * job.chunk_rows + 1)
        if progress:
            progress(len(chunk))
    return store.assemble(file_format(job.output)), skipped


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(islice(items, size)):
        yield chunk
