"""`moviegenre calibrate-llm` and `moviegenre tune-recognition`: what is measured on calibration data and stored
for the service to use (the LLM's say in the answer per model, the film-recognition models per route)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.console import LLMBackend, console, print_table
from service.settings import Settings


def calibrate_llm(
    films: Annotated[int, typer.Option(help="English validation films (default 300)", show_default=False)] = 300,
    foreign_films: Annotated[int, typer.Option(
        help="films of each multilingual dev file's calibration half (default 50)", show_default=False)] = 50,
    llm: Annotated[LLMBackend | None, typer.Option(help="the backend (default: $LLM_BACKEND)")] = None,
    no_languages: Annotated[bool, typer.Option("--no-languages", help="the English route only")] = False,
) -> None:
    """measure and store the LLM's say in the answer, per model"""
    from service.evaluation import calibrate
    from service.evaluation.held_out import multilingual_files

    settings = Settings()
    if llm:
        settings = settings.replace(llm_backend=llm)
    languages = {} if no_languages else multilingual_files(settings)
    result = calibrate.run(settings, films, foreign_films, languages)  # CalibrationRefused: main says so, exit 1
    columns = ("vote alone", "LLM alone", "fused, default", "best of the grid", "chosen")
    for route, c in result["routes"].items():
        best = c["best"]
        print_table(f"{result['model']}, {route} route: {c['films']} validation films "
                    f"({c['llm_answered']} answered by the LLM); micro-F1", columns,
                    [(f"{c['vote_f1']:.4f}", f"{c['llm_only_f1']:.4f}", f"{c['fused_default_f1']:.4f}",
                      f"{best['micro_f1']:.4f} (weight {best['weight']}, floor {best['floor']}; gain "
                      f"{best['gain']:+.4f}, by chance up to {best['gain_by_chance_p95']:+.4f}; holds in "
                      f"{best['gain_holds_in']:.0%} of resamples)",
                      f"{c['fused_f1']:.4f} (weight {c['weight']}, floor {c['floor']})")], right=columns)
    console.print(f"stored in {result['stored']} for {result['model']}", highlight=False)


def tune_recognition(
    data: Annotated[str | None, typer.Option(
        help="IMDb's English descriptions (default: dev-eval/n_movies.csv)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the tables, store nothing")] = False,
) -> None:
    """fit each route's film-recognition model on calibration data and store it in service/data/recognition.json"""
    from service.evaluation import recognition
    from service.evaluation.held_out import evaluation_sets, multilingual_files
    from service.loading import load_classifier

    settings = Settings()
    path = Path(data) if data else settings.index.dev_eval() / "n_movies.csv"
    classifier = load_classifier(settings.replace(llm_backend="none", recognise_films=False))
    try:
        result = recognition.tune(classifier, path, multilingual_files(settings), evaluation_sets(settings),
                                  settings.index.data)
    finally:
        classifier.close()
    print_dropped(result["held_out"])
    for route, rows in result["tables"].items():
        _print_recognition_table(route, rows, result["routes"].get(route))
    _print_near_duplicates(result["near_duplicate"])
    _print_dev_sequels(result["dev_sequels"])
    if not dry_run:
        recognition.write(result)
        console.print(f"stored in {recognition.MODELS_FILE}", highlight=False)


def _print_dev_sequels(read: dict | None) -> None:
    if read:
        console.print(f"New descriptions of sequels the reference holds, for development ({read['data']}: "
                      f"{read['descriptions']}, not tuned on), read by the English model: as itself {read['itself']}, "
                      f"as another film {read['another_film']}, with a series' shared genres {read['series']} "
                      f"({read['series_of_its_own']} of its own series), not recognised {read['not_recognised']}",
                      highlight=False)


def print_dropped(record: dict) -> None:
    """What each calibration set dropped as films of the evaluation sets (held_out.HeldOut.record)."""
    sets = ", ".join(f"{name} ({d['films']})" for name, d in record["evaluation_sets"].items())
    print_table(f"Calibration without the films make eval reports on: {sets}",
                ("calibration set", "films", "dropped", "by title", "by plot text", "by a plot that close"),
                ((name, str(d["films"]), str(d["dropped"]), str(d["by_title"]), str(d["by_plot_text"]),
                  str(d["by_plot_similarity"])) for name, d in record["dropped"].items()),
                right=("films", "dropped", "by title", "by plot text", "by a plot that close"))


def _print_near_duplicates(measured: dict) -> None:
    columns = ("similarity", *(f"{part}: {what}" for part in measured for what in ("own film found", "lacking, close")))
    thresholds = sorted({t for m in measured.values() for t in m["at"]})
    lines = []
    for t in thresholds:
        if round(float(t) * 100) % 5 and all(float(t) != m["chosen"] for m in measured.values()):
            continue
        cells = []
        for m in measured.values():
            at = m["at"][t]
            cells += [_percent(at["known_found"]), _percent(at["lacking_close"])]
        lines.append((("▶" if any(float(t) == m["chosen"] for m in measured.values()) else "") + t, *cells))
    counts = "; ".join(f"{part}: {m['known']} known, {m['lacking']} of films the reference lacks"
                       for part, m in measured.items())
    print_table(f"Near-duplicate plots (exclusion.NEAR_DUPLICATE, ▶ in use), on the same descriptions ({counts}): "
                "the share of known descriptions whose own film's plot is that close, and of descriptions of films "
                "the reference lacks that find a plot that close", columns, lines, right=columns)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.1%}"


def _print_recognition_table(route: str, rows: list[dict], chosen: dict | None) -> None:
    sets = [key for key in rows[0] if isinstance(rows[0][key], dict)]
    pick = (chosen["threshold"], chosen["near_tie"]) if chosen else None
    columns, lines = ("threshold", "near tie", *sets), []
    for r in rows:
        if r["threshold"] * 4 % 2 and pick != (r["threshold"], r["near_tie"]):
            continue  # every other threshold, to keep the table short
        mark = "▶" if pick == (r["threshold"], r["near_tie"]) else "*" if r["allowed"] else ""
        cells = []
        for name in sets:
            t = r[name]
            n, false = max(t["descriptions"], 1), t["lacking_recognised" if not t["known"] else "unseen_recognised"]
            cells.append(f"{t['right']}/{t['wrong']} of {t['known']}; {t['other_year'] / n:.1%}; {false / n:.1%}; "
                         f"{t['series']}")
        lines.append((f"{mark}{r['threshold']:g}", f"{r['near_tie']:g}", *cells))
    print_table(f"Recognition on the {route} route, calibration data: known films recognised right / as another "
                "(of known); recognised as a film of another year; recognised once its own films and suspects are "
                "left out (of all; of films the reference lacks: recognised as searched); answered with a series' "
                "shared genres; * within the limits, ▶ chosen", columns, lines, right=columns)
