"""`moviegenre build-index` and `moviegenre imdb-db`: the reference index, and the IMDb database of mode=lookup."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.console import Failure, console, print_table
from service.settings import Settings


def build_index(
    data: Annotated[str | None, typer.Option(help="a corpus file or folder (default: $MOVIEGENRE_DATA)")] = None,
    vocabulary: Annotated[str | None, typer.Option(
        help="the labels of the index: 'default' (the genres), 'corpus' (the labels the corpus carries) or a "
             "vocabulary file (one label a line, 'Label: source label, …' maps other labels onto it)")] = None,
) -> None:
    """build the reference index from a corpus"""
    from service.build import build_index

    settings = Settings()

    def announce(part: str, manifest: dict) -> None:
        console.print(f"[green]the {part} part of the index is current ({manifest['build']})[/green]")

    report = build_index(Path(data or settings.index.data), settings.index.dir, settings, on_part=announce,
                         vocabulary=vocabulary)
    _print_build_summary(report)


def _print_build_summary(report) -> None:
    summary = report.corpus.summary()
    print_table("Sources", ("source", "format", "read", "kept", "dropped (why)"), (
        (name, s["format"], str(s["read"]), str(s["kept"]), _dropped(s["dropped"]) or "-")
        for name, s in summary["sources"].items()))
    print_table("Films per genre", ("genre", "films"), ((genre, str(n)) for genre, n in summary["genres"].items()),
                right={"films"})
    unmapped = ", ".join(f"{label!r} ×{n}" for label, n in summary["unmapped_labels"].items())
    console.print(f"Labels outside the vocabulary, dropped: {unmapped or 'none'}")
    left = ", ".join(f"{label!r} ({n} films)" for label, n in summary["left_to_llm"].items())
    console.print(f"Labels with too few films to learn, left to the LLM: {left or 'none'}")
    corrections = summary["corrections"]
    if corrections.get("not_read"):
        console.print(f"[yellow]Editors' corrections not folded in[/yellow] ({corrections['not_read']}): the service "
                      "serves them all beside this index")
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


def _dropped(dropped: dict[str, int]) -> str:
    """Why rows were dropped, the commonest reason first."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items(), key=lambda x: -x[1]))


def imdb_db(
    tsv: Annotated[str | None, typer.Option(
        help="a folder already holding the seven .tsv.gz files (skips the download)")] = None,
) -> None:
    """download IMDb's datasets and build the lookup database"""
    import httpx

    from service.lookup.imdb import build_imdb_database, download_datasets

    settings = Settings()
    folder = Path(tsv) if tsv else settings.lookup.imdb_db.parent / "tsv"
    if not tsv:
        console.print(f"downloading IMDb's datasets into {folder} (several GB)…")
        try:
            download_datasets(folder)
        except httpx.HTTPError as exc:
            raise Failure(f"download failed ({exc}); with the files at hand: make imdb-db TSV=folder") from exc
    console.print(f"building {settings.lookup.imdb_db} with cinemagoer's importer…")
    build_imdb_database(folder, settings.lookup.imdb_db)
    console.print(f"IMDb database ready: {settings.lookup.imdb_db}")
