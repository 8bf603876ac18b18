"""Command-line entry points: `moviegenre build-index | classify | serve | eval | bench`."""
from __future__ import annotations

import sys

import typer

from service.cli import benchmarks, calibrating, classifying, evaluating, index, serving
from service.cli.console import Failure, console

# plain help and one-line errors, as a script reads them; an unexpected error keeps its standard traceback
app = typer.Typer(name="moviegenre", help=__doc__, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]})

COMMANDS = {
    "build-index": index.build_index,
    "classify": classifying.classify,
    "classify-file": classifying.classify_file,
    "eval": evaluating.evaluate,
    "eval-keywords": evaluating.eval_keywords,
    "eval-corrections": evaluating.eval_corrections,
    "calibrate-llm": calibrating.calibrate_llm,
    "bench": benchmarks.bench,
    "bench-file": benchmarks.bench_file,
    "tune-recognition": calibrating.tune_recognition,
    "bench-fresh": benchmarks.bench_fresh,
    "imdb-db": index.imdb_db,
    "serve": serving.serve,
}
for name, command in COMMANDS.items():
    # the docstring is the help; in the list of commands in full, as argparse showed it
    app.command(name, short_help=command.__doc__)(command)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. An expected failure is a one-line message on stdout and exit 2 (1 for a
    refused calibration or a failed download); a usage error is the usage and the message on stderr, exit 2."""
    args = classifying.bare_llm_option(list(sys.argv[1:] if argv is None else argv))
    try:
        return app(args=args, prog_name="moviegenre", standalone_mode=False) or 0
    except typer.TyperException as exc:  # click's usage errors
        exc.show()
        return exc.exit_code
    except Exception as exc:
        failure = _expected(exc)
        if failure is None:
            raise
        message, code = failure
        console.print(f"[red]{message}[/red]", highlight=False)
        return code


def _expected(exc: Exception) -> tuple[str, int] | None:
    """The one-line message and exit code of an expected failure; None for any other exception."""
    from service.api.replicas import ReplicasError
    from service.batch.ray_engine import IndexChanged
    from service.batch.records import CatalogueError
    from service.calibration import CalibrationRefused
    from service.corpus import CorpusFormatError
    from service.corrections import StoreUnavailable
    from service.settings import ConfigurationError
    from service.store import IndexLoadError

    if isinstance(exc, Failure):
        return str(exc), exc.code
    if isinstance(exc, CalibrationRefused):
        return f"calibration refused: {exc}", 1
    if isinstance(exc, StoreUnavailable):
        return f"{exc}: try again once the corrections store answers", 3
    if isinstance(exc, (IndexLoadError, CorpusFormatError, CatalogueError, ReplicasError, ConfigurationError,
                        IndexChanged, FileNotFoundError)):
        return str(exc), 2
    return None
