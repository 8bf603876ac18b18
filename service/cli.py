"""Command-line entry points: `moviegenre build-index | classify | serve | eval | bench`."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from service.settings import ConfigurationError, Settings

console = Console()
MULTILINGUAL_DEV = Settings().index.data.parent / "dev-eval" / "multilingual"
EVAL_DATA = Settings().index.data.parent / "dev-eval" / "imdb_top_1000.csv"


def _print_build_summary(report) -> None:
    summary = report.corpus.summary()
    table = Table(title="Sources")
    for column in ("source", "format", "read", "kept", "dropped (why)"):
        table.add_column(column)
    for name, s in summary["sources"].items():
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(s["dropped"].items(), key=lambda x: -x[1]))
        table.add_row(name, s["format"], str(s["read"]), str(s["kept"]), why or "-")
    console.print(table)
    genres = Table(title="Films per genre")
    genres.add_column("genre")
    genres.add_column("films", justify="right")
    for genre, n in summary["genres"].items():
        genres.add_row(genre, str(n))
    console.print(genres)
    unmapped = ", ".join(f"{label!r} ×{n}" for label, n in summary["unmapped_labels"].items())
    console.print(f"Labels outside the vocabulary, dropped: {unmapped or 'none'}")
    left = ", ".join(f"{label!r} ({n} films)" for label, n in summary["left_to_llm"].items())
    console.print(f"Labels with too few films to learn, left to the LLM: {left or 'none'}")
    corrections = summary["corrections"]
    if corrections["read"]:
        console.print(f"Editors' corrections folded in: {corrections['read']} ({corrections['replaced']} replaced a "
                      f"reference film's labels, {corrections['added']} added as films; "
                      f"{corrections.get('superseded', 0)} superseded by a newer one of the same film); the served "
                      f"side index serves what changed after change {corrections['through_change']}")
    for name, part in report.manifest["parts"].items():
        if blend := part.get("blend"):
            console.print(f"{name} part, blend tuned on a validation split: vote {blend['vote']}, TF-IDF "
                          f"{blend['tfidf']}, embedding head {blend['embedding']}, threshold {blend['threshold']} "
                          f"(validation micro-F1 {blend['validation_micro_f1']})")
        console.print(f"[bold]{report.manifest['films']} films[/bold] indexed with {part['model']} "
                      f"(dim {part['dim']}); {report.embedded[name]} plots embedded, the rest from cache; "
                      f"current after {report.seconds[name]:.1f} s")


def cmd_build_index(args, settings: Settings) -> int:
    from service.build import build_index

    def announce(part: str, manifest: dict) -> None:
        console.print(f"[green]the {part} part of the index is current ({manifest['build']})[/green]")

    report = build_index(Path(args.data or settings.index.data), settings.index.dir, settings, on_part=announce,
                         vocabulary=args.vocabulary)
    _print_build_summary(report)
    return 0


def cmd_classify(args, settings: Settings) -> int:
    from service.loading import load_classifier

    result = load_classifier(settings).classify(args.text)
    if args.json:
        print(json.dumps({"genres": result.genres, "scores": {g: round(s, 4) for g, s in result.scores.items()},
                          "backend": result.backend, "fallback_reason": result.fallback_reason}, indent=2))
    else:
        print(", ".join(result.genres))
        note = f" (LLM unused: {result.fallback_reason})" if result.fallback_reason else ""
        console.print(f"[dim]answered by {result.backend}{note}[/dim]", highlight=False)
    return 0


def cmd_serve(args, settings: Settings) -> int:
    import uvicorn

    from service.api.app import create_app

    logging.basicConfig(level=settings.service.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings.ensure_servable()
    build = _build_missing_parts(settings, args.data) if args.build_missing else None
    try:
        if args.replicas > 1:
            from service.api.replicas import serve_replicas

            return serve_replicas(settings, args.replicas, args.replica_cpus) or 0
        # TLS on the same port when a certificate is configured (uvicorn's own); RequestLog writes one structured
        # line per request instead of uvicorn's access log
        service, operations = settings.service, settings.operations
        uvicorn.run(create_app(settings), host=service.host, port=service.port, log_level=service.log_level,
                    access_log=False, ssl_certfile=operations.ssl_certfile, ssl_keyfile=operations.ssl_keyfile)
    finally:
        if build is not None and build.poll() is None:
            build.terminate()  # what it embedded is cached: the next start goes on from there
    return 0


def _build_missing_parts(settings: Settings, data: str | None):
    """Start `build-index` in the background when the index lacks a part the settings use, and wait until
    the English part is current: the service answers from it while the rest is built (it picks the
    multilingual part up when that build completes)."""
    import subprocess
    import time

    from service.store import FORMAT_VERSION, IndexLoadError, read_manifest

    def built_parts() -> set[str]:
        try:
            manifest = read_manifest(settings.index.dir) or {}
        except IndexLoadError:
            return set()
        return set(manifest.get("parts", {})) if manifest.get("format_version") == FORMAT_VERSION else set()

    if set(settings.index.part_models()) <= built_parts():
        return None
    from service.genres import Vocabulary

    existing = read_manifest(settings.index.dir) if built_parts() else None
    if existing and not Vocabulary.from_manifest(existing.get("vocabulary")).is_default() and data is None:
        console.print("the index has its own vocabulary: its missing parts are not rebuilt from the default corpus "
                      "(run `make build-index DATA=… VOCABULARY=… INDEX=…`)")
        return None
    console.print("building the missing parts of the index in the background (`moviegenre build-index`)…")
    # at a lower CPU priority: once the English part is current the service starts and answers beside the rest
    # of the build (several minutes of multilingual embedding on every core), and its requests come first
    build = subprocess.Popen([sys.executable, "-m", "service.cli", "build-index"] + (["--data", data] if data else []),
                             preexec_fn=lambda: os.nice(10))
    while "english" not in built_parts():
        if build.poll() is not None:
            raise SystemExit(f"build-index failed (exit {build.returncode}): see its output above")
        time.sleep(1)
    return build


def cmd_classify_file(args, settings: Settings) -> int:
    from service.batch.run import Job, classify_file

    if args.llm:
        settings = settings.replace(**{"llm_backend": args.llm, "llm_concurrency": args.llm_concurrency})
    job = Job.of(Path(args.input), Path(args.output), settings, args.text_column, args.chunk_rows, bool(args.llm))
    console.print(f"classifying {job.source} ({job.text_column!r} column) → {job.output} on "
                  f"{'Ray' if args.engine == 'ray' else 'this machine'}", highlight=False)
    with _progress_bar(job.source, disable=args.quiet) as advance:
        if args.engine == "ray":
            from service.batch.ray_engine import classify_file_on_ray

            summary = classify_file_on_ray(job, args.actors, args.object_store_mb, advance)
        else:
            from service.loading import load_classifier

            classifier = load_classifier(job.settings)
            try:
                summary = classify_file(job, classifier, advance)
            finally:
                classifier.close()
    for note in summary.notes:
        console.print(f"[yellow]{note}[/yellow]", highlight=False)
    if args.metrics_file:
        _write_batch_metrics(Path(args.metrics_file), summary)
    by = f" by {summary.actors} Ray actor{'s' if summary.actors > 1 else ''}" if summary.actors else ""
    resumed = f" (resumed after {summary.resumed_rows:,} rows done before)" if summary.resumed_rows else ""
    console.print(f"{summary.classified:,} rows classified{by} → {summary.output}; {summary.rejected:,} rejected "
                  f"→ {summary.sidecar}{resumed}", highlight=False)
    return 0


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


@contextlib.contextmanager
def _progress_bar(source: Path, disable: bool):
    from service.batch.records import count_rows

    with Progress(BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(), console=console,
                  disable=disable) as progress:
        task = progress.add_task("rows", total=count_rows(source))
        yield lambda rows: progress.advance(task, rows)


class RateColumn(ProgressColumn):
    def render(self, task):
        return Text(f"{task.speed:,.0f} rows/s" if task.speed else "… rows/s")


def cmd_eval(args, settings: Settings) -> int:
    from service.evaluation import report, runner

    settings = settings.replace(**{"llm_backend": args.llm or "none"})
    languages = {} if args.no_languages else {
        path.stem.split("_")[0]: path for path in sorted(MULTILINGUAL_DEV.glob("*.csv"))}
    results = runner.run(settings, Path(args.data), llm_limit=args.limit, languages=languages,
                         fp32=not args.no_fp32, llm_language_limit=args.language_limit)
    report.write(results, Path(args.out))
    console.print(report.markdown(results), highlight=False)
    console.print(f"written: {args.out}/report.md, results.json, per_genre_f1.png")
    return 0


def cmd_eval_keywords(args, settings: Settings) -> int:
    from service.atomic import write_bytes
    from service.evaluation import keywords

    settings = settings.replace(**{"llm_backend": args.llm or "none"})
    results = keywords.run(settings, settings.index.dir / "keyword-eval", args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "keywords.md", keywords.markdown(results).encode("utf-8"))
    write_bytes(out / "keywords.json", json.dumps(results, indent=2).encode("utf-8"))
    console.print(keywords.markdown(results), highlight=False)
    return 0


def cmd_eval_corrections(args, settings: Settings) -> int:
    from service.atomic import write_json
    from service.evaluation import corrections

    results = corrections.run(settings, Path(args.data), args.seed, args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "corrections.json", results)
    table = Table(title=f"Corrections on {results['data']}: {results['corrected_films']} films corrected through "
                        f"POST /feedback, {results['other_films']} not (titles excluded; vote, no LLM)")
    for column in ("films asked", "micro-F1", "recognised as a correction"):
        table.add_column(column)
    rows = {"corrected_before": "corrected half, before", "corrected_same_text": "corrected half, same text",
            "corrected_paraphrase": "corrected half, paraphrase", "others_before": "other half, before",
            "others_after": "other half, after"}
    for key, name in rows.items():
        table.add_row(name, f"{results[key]['micro_f1']:.4f}", str(results[key]["recognised_as_correction"]))
    console.print(table)
    low, high = results["others_change_interval"]
    console.print(f"other half: {results['others_change']:+.4f} (95% interval {low:+.4f} .. {high:+.4f})")
    return 0


def cmd_calibrate_llm(args, settings: Settings) -> int:
    from service.calibration import CalibrationRefused
    from service.evaluation import calibrate

    if args.llm:
        settings = settings.replace(**{"llm_backend": args.llm})
    languages = {} if args.no_languages else {
        path.stem.split("_")[0]: path for path in sorted(MULTILINGUAL_DEV.glob("*.csv"))}
    try:
        result = calibrate.run(settings, args.films, args.foreign_films, languages)
    except CalibrationRefused as exc:
        console.print(f"[red]calibration refused: {exc}[/red]", highlight=False)
        return 1
    for route, c in result["routes"].items():
        table = Table(title=f"{result['model']}, {route} route: {c['films']} validation films "
                            f"({c['llm_answered']} answered by the LLM); micro-F1")
        for column in ("vote alone", "LLM alone", "fused, default", "best of the grid", "chosen"):
            table.add_column(column, justify="right")
        best = c["best"]
        table.add_row(f"{c['vote_f1']:.4f}", f"{c['llm_only_f1']:.4f}", f"{c['fused_default_f1']:.4f}",
                      f"{best['micro_f1']:.4f} (weight {best['weight']}, floor {best['floor']}; gain "
                      f"{best['gain']:+.4f}, by chance up to {best['gain_by_chance_p95']:+.4f}; holds in "
                      f"{best['gain_holds_in']:.0%} of resamples)",
                      f"{c['fused_f1']:.4f} (weight {c['weight']}, floor {c['floor']})")
        console.print(table)
    console.print(f"stored in {result['stored']} for {result['model']}", highlight=False)
    return 0


def cmd_bench(args, settings: Settings) -> int:
    from service import bench

    bench.run(settings, Path(args.out), args.only, Path(args.against) if args.against else None)
    return 0


def cmd_bench_file(args, settings: Settings) -> int:
    from service.atomic import write_bytes
    from service.batch import bench

    figures = bench.run(settings, args.rows, args.ray_rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "catalogue.json", json.dumps(figures, indent=2).encode("utf-8"))
    console.print(json.dumps(figures, indent=2), highlight=False)
    return 0


def cmd_tune_recognition(args, settings: Settings) -> int:
    from service.evaluation import recognition
    from service.loading import load_classifier

    classifier = load_classifier(settings.replace(**{"llm_backend": "none", "recognise_films": False}))
    files = {path.stem.split("_")[0]: path for path in sorted(MULTILINGUAL_DEV.glob("*.csv"))}
    result = recognition.tune(classifier, Path(args.data), files)
    for route, rows in result["tables"].items():
        _print_recognition_table(route, rows, result["routes"].get(route))
    if not args.dry_run:
        recognition.write(result["routes"])
        console.print(f"stored in {recognition.MODELS_FILE}", highlight=False)
    return 0


def _print_recognition_table(route: str, rows: list[dict], chosen: dict | None) -> None:
    sets = [key for key in rows[0] if isinstance(rows[0][key], dict)]
    table = Table(title=f"Recognition on the {route} route, calibration data: known films recognised right / as "
                        "another (of known); recognised as a film of another year; recognised once its own films and "
                        "suspects are left out (of all); * within the limits, ▶ chosen")
    for column in ("threshold", "near tie", *sets):
        table.add_column(column, justify="right")
    pick = (chosen["threshold"], chosen["near_tie"]) if chosen else None
    for r in rows:
        if r["threshold"] * 4 % 2 and pick != (r["threshold"], r["near_tie"]):
            continue  # every other threshold, to keep the table short
        mark = "▶" if pick == (r["threshold"], r["near_tie"]) else "*" if r["allowed"] else ""
        cells = []
        for name in sets:
            t = r[name]
            n, false = max(t["descriptions"], 1), t["lacking_recognised" if not t["known"] else "unseen_recognised"]
            cells.append(f"{t['right']}/{t['wrong']} of {t['known']}; {t['other_year'] / n:.1%}; {false / n:.1%}")
        table.add_row(f"{mark}{r['threshold']:g}", f"{r['near_tie']:g}", *cells)
    console.print(table)


def cmd_bench_fresh(args, settings: Settings) -> int:
    from service import bench
    from service.settings import PROJECT_ROOT

    figures = bench.fresh_clone_first_answer(PROJECT_ROOT)
    console.print(json.dumps(figures, indent=2), highlight=False)
    return 0 if figures["fresh_clone_first_answer_s"] is not None else 1


def cmd_imdb_db(args, settings: Settings) -> int:
    import httpx

    from service.lookup.imdb import build_imdb_database, download_datasets

    tsv = Path(args.tsv) if args.tsv else settings.lookup.imdb_db.parent / "tsv"
    if not args.tsv:
        console.print(f"downloading IMDb's datasets into {tsv} (several GB)…")
        try:
            download_datasets(tsv)
        except httpx.HTTPError as exc:
            console.print(f"[red]download failed ({exc}); with the files at hand: make imdb-db TSV=folder[/red]")
            return 1
    console.print(f"building {settings.lookup.imdb_db} with cinemagoer's importer…")
    build_imdb_database(tsv, settings.lookup.imdb_db)
    console.print(f"IMDb database ready: {settings.lookup.imdb_db}")
    return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moviegenre", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-index", help="build the reference index from a corpus")
    build.add_argument("--data", help="a corpus file or folder (default: $MOVIEGENRE_DATA)")
    build.add_argument("--vocabulary", help="the labels of the index: 'default' (the genres), 'corpus' (the labels "
                                            "the corpus carries) or a vocabulary file (one label a line, "
                                            "'Label: source label, …' maps other labels onto it)")
    build.set_defaults(func=cmd_build_index)
    classify = commands.add_parser("classify", help="classify one description without a server")
    classify.add_argument("text")
    classify.add_argument("--json", action="store_true", help="print the full answer as JSON")
    classify.set_defaults(func=cmd_classify)
    catalogue = commands.add_parser("classify-file", help="classify a catalogue file (CSV, JSONL or Parquet)")
    catalogue.add_argument("input")
    catalogue.add_argument("-o", "--output", required=True, help="the output file; its extension sets its format")
    catalogue.add_argument("--text-column", help="the column to classify (default: plot, else description)")
    catalogue.add_argument("--engine", choices=["local", "ray"], default="local",
                           help="ray: Ray Data on $RAY_ADDRESS, or on a Ray started here when it is unset")
    catalogue.add_argument("--chunk-rows", type=positive_int, default=2000, help="rows classified and saved together")
    catalogue.add_argument("--llm", nargs="?", const=Settings().llm.backend, choices=["ollama", "openai"],
                           help="ask the LLM too (default backend: $LLM_BACKEND)")
    catalogue.add_argument("--llm-concurrency", type=positive_int, default=Settings().llm.concurrency,
                           help="requests in flight to the LLM server at once, in all (Ray: shared by the actors)")
    catalogue.add_argument("--actors", type=positive_int,
                           help="Ray: classifying actors (default: one per CPU but one, capped by memory)")
    catalogue.add_argument("--object-store-mb", type=int, default=512,
                           help="Ray started here: the object store's size")
    catalogue.add_argument("--quiet", action="store_true", help="no progress bar")
    catalogue.add_argument("--metrics-file", help="write the rows classified and rejected there in Prometheus text "
                                                   "format (node_exporter's textfile collector)")
    catalogue.set_defaults(func=cmd_classify_file)
    evaluate = commands.add_parser("eval", help="compare the served pipeline with classic methods")
    evaluate.add_argument("--data", default=str(EVAL_DATA),
                          help="evaluation CSV: imdb_top_1000 or the generic title,year,plot,genres format")
    evaluate.add_argument("--llm", choices=["ollama", "openai"], help="also evaluate the served pipeline with an LLM")
    evaluate.add_argument("--limit", type=int, default=60, help="films for the (slow) LLM run (default 60)")
    evaluate.add_argument("--language-limit", type=int, default=50,
                          help="films of each multilingual dev file's evaluation half for the LLM run (default 50)")
    evaluate.add_argument("--out", default="eval", help="folder for report.md, results.json and the chart")
    evaluate.add_argument("--no-languages", action="store_true",
                          help=f"skip the served figures on the multilingual dev files ({MULTILINGUAL_DEV})")
    evaluate.add_argument("--no-fp32", action="store_true",
                          help="skip the served figure with the unquantised English model")
    evaluate.set_defaults(func=cmd_eval)
    keyword_eval = commands.add_parser("eval-keywords", help="a second taxonomy: TMDB 5000's keywords, learned "
                                                              "from the corpus and answered zero-shot")
    keyword_eval.add_argument("--llm", choices=["ollama", "openai"], help="also the zero-shot LLM path")
    keyword_eval.add_argument("--limit", type=positive_int, default=100, help="films for the LLM path (default 100)")
    keyword_eval.add_argument("--out", default="eval", help="folder for keywords.md and keywords.json")
    keyword_eval.set_defaults(func=cmd_eval_keywords)
    correction_eval = commands.add_parser("eval-corrections", help="correct half the evaluation films through "
                                                                    "POST /feedback and ask every film again")
    correction_eval.add_argument("--data", default=str(EVAL_DATA), help="evaluation file (default: imdb_top_1000)")
    correction_eval.add_argument("--seed", type=int, default=0, help="which half is corrected (default 0)")
    correction_eval.add_argument("--limit", type=positive_int, help="films in all (default: every film)")
    correction_eval.add_argument("--out", default="eval", help="folder for corrections.json")
    correction_eval.set_defaults(func=cmd_eval_corrections)
    calibrate = commands.add_parser("calibrate-llm", help="measure and store the LLM's say in the answer, per model")
    calibrate.add_argument("--films", type=int, default=300, help="English validation films (default 300)")
    calibrate.add_argument("--foreign-films", type=int, default=50,
                           help="films of each multilingual dev file's calibration half (default 50)")
    calibrate.add_argument("--llm", choices=["ollama", "openai"], help="the backend (default: $LLM_BACKEND)")
    calibrate.add_argument("--no-languages", action="store_true", help="the English route only")
    calibrate.set_defaults(func=cmd_calibrate_llm)
    benchmark = commands.add_parser("bench", help="measure speed; writes bench/results.json")
    benchmark.add_argument("--out", default="bench")
    benchmark.add_argument("--only", choices=["corrections", "llm", "service"],
                           help="one part alone: corrections (the English p50 with and without 1,000 corrections), "
                                "llm (plain clients beside clients waiting on a 3 s stand-in LLM), service (latency, "
                                "load, overload, RSS); written to bench/NAME.json")
    benchmark.add_argument("--against", metavar="CHECKOUT",
                           help="only the English p50 of another checkout of the project (git worktree add DIR REV) "
                                "beside this code's, on the same index")
    benchmark.set_defaults(func=cmd_bench)
    bench_file = commands.add_parser("bench-file", help="classify-file on a large catalogue; bench/catalogue.json")
    bench_file.add_argument("--rows", type=int, default=200_000)
    bench_file.add_argument("--ray-rows", type=int, default=20_000, help="rows for the Ray engine (0: skip it)")
    bench_file.add_argument("--out", default="bench")
    bench_file.set_defaults(func=cmd_bench_file)
    tune = commands.add_parser("tune-recognition", help="fit each route's film-recognition model on calibration data "
                                                        "and store it in service/data/recognition.json")
    tune.add_argument("--data", default=str(Settings().index.data.parent / "dev-eval" / "n_movies.csv"),
                      help="IMDb's English descriptions (default: dev-eval/n_movies.csv)")
    tune.add_argument("--dry-run", action="store_true", help="print the tables, store nothing")
    tune.set_defaults(func=cmd_tune_recognition)
    fresh = commands.add_parser("bench-fresh", help="time a fresh clone's `make run` to its first answer")
    fresh.set_defaults(func=cmd_bench_fresh)
    imdb_db = commands.add_parser("imdb-db", help="download IMDb's datasets and build the lookup database")
    imdb_db.add_argument("--tsv", help="a folder already holding the seven .tsv.gz files (skips the download)")
    imdb_db.set_defaults(func=cmd_imdb_db)
    serve = commands.add_parser("serve", help="serve the HTTP API (MOVIEGENRE_HOST, MOVIEGENRE_PORT)")
    serve.add_argument("--build-missing", action="store_true",
                       help="build what the index lacks in the background, serving as soon as English is ready")
    serve.add_argument("--data", help="the corpus for --build-missing (default: $MOVIEGENRE_DATA)")
    serve.add_argument("--replicas", type=int, default=1,
                       help="more than 1: Ray Serve replicas of the app behind one port (needs the ray extra)")
    serve.add_argument("--replica-cpus", type=float, default=0.5,
                       help="CPUs Ray reserves for each replica (the replicas may use more when idle cores exist)")
    serve.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    from service.api.replicas import ReplicasError
    from service.batch.ray_engine import IndexChanged
    from service.batch.records import CatalogueError
    from service.corpus import CorpusFormatError
    from service.store import IndexLoadError

    try:
        return args.func(args, Settings())
    except (IndexLoadError, CorpusFormatError, CatalogueError, ReplicasError, ConfigurationError, IndexChanged,
            FileNotFoundError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
