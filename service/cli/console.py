"""What the commands share: the rich console they print to, tables, the progress bar of a file run, the one-line
failures `main` reports, and the option types several commands take."""
from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text


console = Console()

LLMBackend = Literal["ollama", "openai"]


class Failure(Exception):
    """An expected failure of a command: `main` prints the message, one line, and exits with `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def positive_int(text: str | int) -> int:
    """The parser of the options that take a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise typer.BadParameter(f"must be a whole number of at least 1, not {str(text)!r}")
    return value


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], right: Collection[str] = ()) -> None:
    """A titled table; the columns named in `right` are right-justified."""
    table = Table(title=title)
    for column in columns:
        if column in right:
            table.add_column(column, justify="right")
        else:
            table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


class RateColumn(ProgressColumn):
    def render(self, task):
        return Text(f"{task.speed:,.0f} rows/s" if task.speed else "… rows/s")


@contextlib.contextmanager
def progress_bar(source: Path, disable: bool):
    """Rows done, rate and time left of a file run; yields the function that advances it by some rows."""
    from service.batch.records import count_rows

    with Progress(BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(), console=console,
                  disable=disable) as progress:
        task = progress.add_task("rows", total=count_rows(source))
        yield lambda rows: progress.advance(task, rows)
