"""A request answered without something outside the process (the rate-limit store, the corrections store): its
answer carries a note saying what and why, and the metrics count it by dependency. Kept in the request's
scope state, where both the middleware and the routes can add to it."""
from __future__ import annotations


def note_degraded(state: dict, dependency: str, note: str) -> None:
    """Once per dependency a request did without."""
    if dependency in state.get("degraded", ()):
        return
    state.setdefault("degraded", []).append(dependency)
    state.setdefault("notes", []).append(note)


def notes_of(state: dict) -> list[str]:
    return list(state.get("notes", ()))
