"""`moviegenre classify-file`: a catalogue file in, the same file with genres out.

Both engines run the same job: the file is read here, chunk by chunk, by one reader (records.py), so rows,
rejections and row numbers never depend on the engine; a rerun skips the chunks a previous run of the same
job finished. What differs is who classifies a chunk: this process (`classify_file`) or a pool of Ray actors
(ray_engine.py). Every classified chunk goes to the same ChunkStore, which assembles the output.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass
from itertools import islice
from pathlib import Path

import pyarrow as pa

from service import calibration
from service.batch.chunks import ChunkStore, Summary, Tap
from service.batch.labelling import classify_items
from service.corrections.store import store_location, stored_version
from service.batch.records import Item, column_types, file_format, read_items, text_column
from service.settings import Settings
from service.store import index_identity

# called with the rows just finished; the total is set first
Progress = Callable[[int], None]
# classifies chunks: (chunk number, items) in, (chunk number, answers) out, in the same order
Labeller = Callable[[Iterable[tuple[int, list[Item]]]], Iterator[tuple[int, pa.Table]]]


@dataclass
class Job:
    source: Path
    output: Path
    text_column: str
    chunk_rows: int
    settings: Settings  # llm_backend "none" unless the LLM was asked for
    uses_llm: bool
    types: dict  # the input columns' own types, where the format states them (Parquet)

    @classmethod
    def of(cls, source: Path, output: Path, settings: Settings, column: str | None = None,
           chunk_rows: int = 2000, llm: bool = False) -> Job:
        file_format(output)  # an output format we cannot write is refused before any work
        # a file run answers from the corrections as they were when it started (no polling midway)
        settings = settings.replace(**{"corrections_poll": 0} | ({} if llm else {"llm_backend": "none"}))
        return cls(source, output, text_column(source, column), chunk_rows, settings,
                   llm, column_types(source))

    def label(self, classifier, items: list[Item]) -> pa.Table:
        """One chunk classified as this job asks, by whichever engine holds the classifier."""
        return classify_items(classifier, items, self.text_column, self.settings.service.max_description_chars,
                              self.types)

    def fingerprint(self, manifest: dict) -> dict:
        """What must be the same for a rerun to take over the chunks of a previous one: the input and how it is
        read, the index's answers (index_identity), every setting that changes an answer, and the calibration
        of the LLM in use, and the editors' corrections served beside the index. No secrets."""
        stat = self.source.stat()
        s = self.settings
        llm = s.llm.identity()
        calibrated = calibration.read_all(s.index.dir).get(calibration.key(llm)) if llm else None
        return {"input": str(self.source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "text_column": self.text_column, "chunk_rows": self.chunk_rows, "index": index_identity(manifest),
                "settings": s.answer_settings(), "calibration": calibrated,
                "corrections": list(astuple(stored_version(store_location(s))))}


def run_job(job: Job, manifest: dict, labeller: Labeller, progress: Progress | None = None,
            tap: Tap | None = None) -> Summary:
    """Read, classify (by `labeller`), keep and assemble: the steps every engine shares (`tap`: see
    ChunkStore.assemble)."""
    store = ChunkStore(job.output, job.fingerprint(manifest))
    done = store.resume()
    items = read_items(job.source)
    skipped = sum(1 for _ in islice(items, done * job.chunk_rows))
    if progress:
        progress(skipped)
    for index, table in labeller(enumerate(_chunks(items, job.chunk_rows), start=done)):
        store.put(index, table, first_row=index * job.chunk_rows + 1)
        if progress:
            progress(len(table))
    summary = store.assemble(file_format(job.output), tap)
    summary.resumed_rows = skipped
    summary.notes += [store.discarded] if store.discarded else []
    summary.notes += [f"column {name!r} held values of different types: written as {kind}"
                      for name, kind in summary.widened.items()]
    return summary


def classify_file(job: Job, classifier, progress: Progress | None = None) -> Summary:
    """On this machine, with a classifier loaded from the job's settings."""
    def labeller(chunks: Iterable[tuple[int, list[Item]]]) -> Iterator[tuple[int, pa.Table]]:
        for index, chunk in chunks:
            yield index, job.label(classifier, chunk)

    return run_job(job, classifier.index.manifest, labeller, progress)


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(islice(items, size)):
        yield chunk
