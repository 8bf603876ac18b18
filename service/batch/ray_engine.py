"""The classify-file pipeline on Ray Data: read → map_batches on a pool of actors, each of which loads the
index and the models once → the driver writes the chunks (ChunkStore) and assembles the output.

RAY_ADDRESS names a cluster; unset, a Ray is started here, sized so that the actors can never take every
CPU (on 2 cores, actors holding both starve the read tasks and the job hangs) and with a capped object
store. Every node must see the index folder at the same path (a shared read-only volume): the actors
memory-map its vectors. A dead actor is restarted by Ray and its batches are retried.
"""
from __future__ import annotations

import dataclasses
import os

import pyarrow as pa

from service.batch.chunks import ChunkStore, Summary
from service.batch.labelling import classify_items
from service.batch.records import Item, columns, decode_record, file_format, parse_json_line


class ClassifyBatch:
    """A Ray Data actor: one classifier, loaded once, for every batch the actor is given."""

    def __init__(self, settings, fmt: str, text_column: str, llm_batch: int | None):
        from service.loading import load_classifier

        self.classifier = load_classifier(settings)
        self.fmt, self.text_column, self.llm_batch = fmt, text_column, llm_batch
        self.max_chars = settings.max_description_chars

    def __call__(self, batch: pa.Table) -> pa.Table:
        return classify_items(self.classifier, batch_items(batch, self.fmt), self.text_column, self.max_chars,
                              self.llm_batch)


def batch_items(batch: pa.Table, fmt: str) -> list[Item]:
    """A batch as read by Ray → records, read as this machine's engine reads them (records.py)."""
    rows = batch.to_pylist()
    if fmt == "csv":  # every column was read as bytes: a field that is not UTF-8 is a rejected row
        return [decode_record(row) for row in rows]
    if fmt == "jsonl":  # read as lines of text: each parsed here
        return [parse_json_line(row["text"]) for row in rows]
    return [(row, None) for row in rows]


def classify_file_on_ray(job, actors: int | None = None, object_store_mb: int = 512, progress=None) -> Summary:
    import ray

    started_here = _connect(object_store_mb)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = actors or max(1, cpus - 1)
        if pool >= cpus:
            raise ValueError(f"{pool} actors of one CPU each would take all {cpus} CPUs and starve the reads")
        store = ChunkStore(job.output, job.fingerprint("ray") | {"actors": pool})
        store.resume()  # Ray reads the file from its start: a rerun begins again (see the README)
        fmt = file_format(job.source)
        dataset = _read(job.source, fmt).map_batches(
            ClassifyBatch, fn_constructor_args=(job.settings, fmt, job.text_column, job.llm_batch),
            batch_size=job.chunk_rows, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1)
        first_row = 1
        for index, table in enumerate(dataset.iter_batches(batch_size=None, batch_format="pyarrow")):
            store.put(index, table, first_row)
            first_row += len(table)
            if progress:
                progress(len(table))
        return dataclasses.replace(store.assemble(file_format(job.output)), actors=pool)
    finally:
        if started_here:
            ray.shutdown()


def _connect(object_store_mb: int) -> bool:
    """Join $RAY_ADDRESS, or start a Ray here. True when started here."""
    import ray

    ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
             object_store_memory=None if os.environ.get("RAY_ADDRESS") else object_store_mb * 1024 * 1024,
             configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in the file's order: row numbers hold
    context.enable_progress_bars = False  # classify-file shows its own
    return not os.environ.get("RAY_ADDRESS")


def _read(source, fmt: str):
    import pyarrow.csv as pacsv
    import ray

    path = str(source.resolve())
    if fmt == "csv":
        return ray.data.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={name: pa.binary() for name in columns(source)}),
            parse_options=pacsv.ParseOptions(newlines_in_values=True))
    if fmt == "jsonl":
        return ray.data.read_text(path, drop_empty_lines=False)
    return ray.data.read_parquet(path)
