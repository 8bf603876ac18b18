"""`moviegenre classify` (one description) and `moviegenre classify-file` (a catalogue file, here or on Ray)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from service.cli.console import LLMBackend, console, positive_int, progress_bar
from service.settings import Settings

LLM_CHOICES = get_args(LLMBackend)


def classify(
    text: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the full answer as JSON")] = False,
) -> None:
    """classify one description without a server"""
    from service.loading import load_classifier

    result = load_classifier(Settings()).classify(text)
    if as_json:
        print(json.dumps({"genres": result.genres, "scores": {g: round(s, 4) for g, s in result.scores.items()},
                          "backend": result.backend, "fallback_reason": result.fallback_reason}, indent=2))
    else:
        print(", ".join(result.genres))
        note = f" (LLM unused: {result.fallback_reason})" if result.fallback_reason else ""
        console.print(f"[dim]answered by {result.backend}{note}[/dim]", highlight=False)


def bare_llm_option(argv: list[str]) -> list[str]:
    """classify-file's `--llm` takes a backend or none (then $LLM_BACKEND's), a value Typer's options cannot leave
    out: a `--llm` followed by no value (the end, or another option) is passed on as `--llm=`, which means that."""
    if argv[:1] != ["classify-file"]:
        return argv
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--llm" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args[i] = "--llm="
    return args


def _llm_backend(text: str) -> str:
    """A backend of --llm, or "" for the configured one (which must be one of them too, as with argparse)."""
    if text and text not in LLM_CHOICES:
        raise typer.BadParameter(f"invalid choice: {text!r} (choose from {', '.join(map(repr, LLM_CHOICES))})",
                                 param_hint="'--llm'")
    return text


def classify_file(
    source: Annotated[str, typer.Argument(metavar="INPUT")],
    output: Annotated[str, typer.Option("-o", "--output", help="the output file; its extension sets its format")],
    text_column: Annotated[str | None, typer.Option(
        help="the column to classify (default: plot, else description)")] = None,
    engine: Annotated[Literal["local", "ray"], typer.Option(
        help="ray: Ray Data on $RAY_ADDRESS, or on a Ray started here when it is unset")] = "local",
    chunk_rows: Annotated[int, typer.Option(parser=positive_int, help="rows classified and saved together")] = 2000,
    llm: Annotated[str | None, typer.Option(parser=_llm_backend, metavar="[ollama|openai]",
                                            help="ask the LLM too (default backend: $LLM_BACKEND)")] = None,
    llm_concurrency: Annotated[int | None, typer.Option(parser=positive_int, help=(
        "requests in flight to each LLM server at once, in all (Ray: shared by the actors)"))] = None,
    actors: Annotated[int | None, typer.Option(parser=positive_int, help=(
        "Ray: classifying actors (default: one per CPU but one, capped by memory)"))] = None,
    object_store_mb: Annotated[int, typer.Option(help="Ray started here: the object store's size")] = 512,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    metrics_file: Annotated[str | None, typer.Option(help=(
        "write the rows classified and rejected there in Prometheus text format (node_exporter's textfile "
        "collector)"))] = None,
) -> None:
    """classify a catalogue file (CSV, JSONL or Parquet)"""
    from service.batch.run import Job

    settings = Settings()
    if llm is not None:
        settings = settings.replace(llm_backend=_llm_backend(llm or settings.llm.backend),
                                    llm_concurrency=llm_concurrency or settings.llm.concurrency)
    job = Job.of(Path(source), Path(output), settings, text_column, chunk_rows, llm is not None)
    console.print(f"classifying {job.source} ({job.text_column!r} column) → {job.output} on "
                  f"{'Ray' if engine == 'ray' else 'this machine'}", highlight=False)
    with progress_bar(job.source, disable=quiet) as advance:
        summary = _run(job, engine, actors, object_store_mb, advance)
    for note in summary.notes:
        console.print(f"[yellow]{note}[/yellow]", highlight=False)
    if metrics_file:
        _write_batch_metrics(Path(metrics_file), summary)
    by = f" by {summary.actors} Ray actor{'s' if summary.actors > 1 else ''}" if summary.actors else ""
    resumed = f" (resumed after {summary.resumed_rows:,} rows done before)" if summary.resumed_rows else ""
    console.print(f"{summary.classified:,} rows classified{by} → {summary.output}; {summary.rejected:,} rejected "
                  f"→ {summary.sidecar}{resumed}", highlight=False)


def _run(job, engine: str, actors: int | None, object_store_mb: int, advance):
    """The job on Ray, or on this machine with a classifier of its settings."""
    if engine == "ray":
        from service.batch.ray_engine import classify_file_on_ray

        return classify_file_on_ray(job, actors, object_store_mb, advance)
    from service.batch.run import classify_file
    from service.loading import load_classifier

    classifier = load_classifier(job.settings)
    try:
        return classify_file(job, classifier, advance)
    finally:
        classifier.close()


def _write_batch_metrics(path: Path, summary) -> None:
    """The run's counts in Prometheus text format, for node_exporter's textfile collector (a batch job has no
    endpoint to scrape)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    from service.atomic import write_bytes

    registry = CollectorRegistry()
    rows = Counter("moviegenre_batch_rows", "Rows of the last classify-file run, by outcome", ["outcome"],
                   registry=registry)
    rows.labels("classified").inc(summary.classified)
    rows.labels("rejected").inc(summary.rejected)
    Gauge("moviegenre_batch_last_success_unixtime", "When the last classify-file run completed",
          registry=registry).set_to_current_time()
    write_bytes(path, generate_latest(registry))
