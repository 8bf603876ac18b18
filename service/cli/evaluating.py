"""`moviegenre eval`, `eval-keywords` and `eval-corrections`: the served pipeline measured against classic methods,
on a second taxonomy, and after editors' corrections."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli.console import LLMBackend, console, positive_int, print_table
from service.settings import Settings


def _eval_data(data: str | None, settings: Settings) -> Path:
    return Path(data) if data else settings.index.dev_eval() / "imdb_top_1000.csv"


def evaluate(
    data: Annotated[str | None, typer.Option(
        help="evaluation CSV: imdb_top_1000 or the generic title,year,plot,genres format")] = None,
    llm: Annotated[LLMBackend | None, typer.Option(help="also evaluate the served pipeline with an LLM")] = None,
    limit: Annotated[int, typer.Option(help="films for the (slow) LLM run (default 60)", show_default=False)] = 60,
    language_limit: Annotated[int, typer.Option(
        help="films of each multilingual dev file's evaluation half for the LLM run (default 50)",
        show_default=False)] = 50,
    out: Annotated[str, typer.Option(help="folder for report.md, results.json and the chart")] = "eval",
    no_languages: Annotated[bool, typer.Option(
        "--no-languages",
        help="skip the served figures on the multilingual dev files (dev-eval/multilingual)")] = False,
    no_fp32: Annotated[bool, typer.Option(
        "--no-fp32", help="skip the served figure with the unquantised English model")] = False,
    sequels: Annotated[str | None, typer.Option(
        help="new descriptions of sequels the reference holds (title,year,plot): how each is recognised "
             "(default: the project's eval/sequels.csv)", show_default=False)] = None,
) -> None:
    """compare the served pipeline with classic methods"""
    from service.evaluation import report, runner
    from service.evaluation.held_out import SEQUELS, multilingual_files

    settings = Settings()
    path = _eval_data(data, settings)
    settings = settings.replace(llm_backend=llm or "none")
    languages = {} if no_languages else multilingual_files(settings)
    results = runner.run(settings, path, llm_limit=limit, languages=languages, fp32=not no_fp32,
                         llm_language_limit=language_limit, sequels=Path(sequels) if sequels else SEQUELS)
    report.write(results, Path(out))
    console.print(report.markdown(results), highlight=False)
    console.print(f"written: {out}/report.md, results.json, per_genre_f1.png")


def eval_keywords(
    llm: Annotated[LLMBackend | None, typer.Option(help="also the zero-shot LLM path")] = None,
    limit: Annotated[int, typer.Option(parser=positive_int, help="films for the LLM path (default 100)",
                                       show_default=False)] = 100,
    out: Annotated[str, typer.Option(help="folder for keywords.md and keywords.json")] = "eval",
) -> None:
    """a second taxonomy: TMDB 5000's keywords, learned from the corpus and answered zero-shot"""
    from service.atomic import write_bytes
    from service.evaluation import keywords

    settings = Settings().replace(llm_backend=llm or "none")
    results = keywords.run(settings, settings.index.dir / "keyword-eval", limit)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "keywords.md", keywords.markdown(results).encode("utf-8"))
    write_bytes(folder / "keywords.json", json.dumps(results, indent=2).encode("utf-8"))
    console.print(keywords.markdown(results), highlight=False)


CORRECTION_ROWS = {"corrected_before": "corrected half, before", "corrected_same_text": "corrected half, same text",
                   "corrected_paraphrase": "corrected half, paraphrase", "others_before": "other half, before",
                   "others_after": "other half, after"}


def eval_corrections(
    data: Annotated[str | None, typer.Option(help="evaluation file (default: imdb_top_1000)")] = None,
    seed: Annotated[int, typer.Option(help="which half is corrected (default 0)", show_default=False)] = 0,
    limit: Annotated[int | None, typer.Option(parser=positive_int, help="films in all (default: every film)")] = None,
    out: Annotated[str, typer.Option(help="folder for corrections.json")] = "eval",
) -> None:
    """correct half the evaluation films through POST /feedback and ask every film again"""
    from service.atomic import write_json
    from service.evaluation import corrections

    settings = Settings()
    results = corrections.run(settings, _eval_data(data, settings), seed, limit)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "corrections.json", results)
    print_table(f"Corrections on {results['data']}: {results['corrected_films']} films corrected through "
                f"POST /feedback, {results['other_films']} not (titles excluded; vote, no LLM)",
                ("films asked", "micro-F1", "recognised as a correction"),
                ((name, f"{results[key]['micro_f1']:.4f}", str(results[key]["recognised_as_correction"]))
                 for key, name in CORRECTION_ROWS.items()))
    low, high = results["others_change_interval"]
    console.print(f"other half: {results['others_change']:+.4f} (95% interval {low:+.4f} .. {high:+.4f})")
