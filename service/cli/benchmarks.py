"""`moviegenre bench`, `bench-file` and `bench-fresh`: the service's speed, a large catalogue file, a fresh clone's
first answer."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from service.cli.console import console
from service.settings import Settings


def bench(
    out: Annotated[str, typer.Option()] = "bench",
    only: Annotated[Literal["corrections", "llm", "probes", "service", "jobs"] | None, typer.Option(
        help="one part alone: corrections (the English p50 with and without 1,000 corrections, SQLite and "
             "PostgreSQL), llm (plain clients beside clients waiting on a 3 s stand-in LLM; the LLM pool), probes "
             "(/livez and /readyz beside 80 lookups waiting on a TMDb that never answers), service (latency, load, "
             "overload, RSS), jobs (/classify alone and beside a 20,000-row file classified as a job); written to "
             "bench/NAME.json")] = None,
    against: Annotated[str | None, typer.Option(
        metavar="CHECKOUT", help="only the English p50 of another checkout of the project (git worktree add DIR REV) "
                                 "beside this code's, on the same index")] = None,
    profile: Annotated[bool, typer.Option(
        "--profile", help="only where a description's CPU goes, stage by stage (batched and alone), and what the "
                          "service's memory is made of; written to bench/profile.json")] = False,
) -> None:
    """measure speed; writes bench/results.json"""
    from service import bench as service_bench

    if profile:
        return _profile(Path(out))
    service_bench.run(Settings(), Path(out), only, Path(against) if against else None)


def _profile(out: Path) -> None:
    from service.atomic import write_json
    from service.cli.console import print_table
    from service.profiling import profile

    figures = profile(Settings())
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "profile.json", figures)
    cpu = figures["cpu_ms_per_description"]
    print_table("CPU per English description (ms)", ("stage", "batched (32)", "alone"),
                ((stage, f"{ms:.3f}", f"{cpu['single'][stage]:.3f}") for stage, ms in cpu["batched"].items()),
                right={"batched (32)", "alone"})
    print_table("Resident memory of the service, by part (MB)", ("part", "MB"),
                ((part, f"{mb:.1f}") for part, mb in figures["rss_mb"].items()), right={"MB"})


def bench_file(
    rows: Annotated[int, typer.Option()] = 200_000,
    ray_rows: Annotated[int, typer.Option(help="rows for the Ray engine (0: skip it)")] = 20_000,
    out: Annotated[str, typer.Option()] = "bench",
) -> None:
    """classify-file on a large catalogue; bench/catalogue.json"""
    from service.atomic import write_bytes
    from service import bench_file as file_bench

    figures = file_bench.run(Settings(), rows, ray_rows)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "catalogue.json", json.dumps(figures, indent=2).encode("utf-8"))
    console.print(json.dumps(figures, indent=2), highlight=False)


def bench_fresh() -> None:
    """time a fresh clone's `make run` to its first answer"""
    from service import bench as service_bench
    from service.settings import PROJECT_ROOT

    figures = service_bench.fresh_clone_first_answer(PROJECT_ROOT)
    console.print(json.dumps(figures, indent=2), highlight=False)
    if figures["fresh_clone_first_answer_s"] is None:
        raise typer.Exit(1)
