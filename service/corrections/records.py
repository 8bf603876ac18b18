"""What the corrections store holds and hands out: a correction as sent and as it stands (pending, served,
revoked), a correction to write, what a write did, and what changed since a reader last looked."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pending", "served", "revoked"]


@dataclass(frozen=True)
class Correction:
    id: int
    text: str
    plot: str
    genres: tuple[str, ...]
    title: str | None
    year: int | None
    author: str
    created_at: str
    film: str = ""                 # the film it corrects (see the module's docstring)
    review: bool = False           # sent anonymously: served only once an editor approves it
    client: str | None = None      # a page correction's client, as a pseudonym
    approved_at: str | None = None
    approved_by: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None
    served_change: int | None = None  # the change that serves it (served.py); None while pending or revoked

    @property
    def status(self) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.review and self.approved_at is None else "served"


@dataclass(frozen=True)
class Draft:
    """A correction to write: what was sent, the film it changes, and who sent it."""
    text: str
    plot: str
    genres: tuple[str, ...]
    title: str | None
    year: int | None
    author: str
    film: str | None = None        # default: the title's film, else the plot's
    review: bool = False
    client: str | None = None


@dataclass(frozen=True)
class Written:
    correction: Correction  # as written by this request, or by the first request with its Idempotency-Key
    replayed: bool = False  # nothing new was written


@dataclass(frozen=True)
class Version:
    """How far the store goes: which store (a replaced file is another), and its last change."""
    store: str = ""
    change: int = 0


@dataclass(frozen=True)
class Changes:
    served: list[Correction]  # served by a change since: sent by an editor, or approved
    revoked: set[int]
    version: int
