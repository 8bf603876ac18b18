"""The recognise and corrections stages: the reference film a description tells of (the evidence weighed by the
route's model, recognition.py), or the film an editor's correction answers for (a text that is the corrected one,
or as good as)."""
from __future__ import annotations

from service.pipeline.routes import Route
from service.recognition import Recogniser, Recognition, recognise_correction
from service.store import Neighbour


def recognised(recogniser: Recogniser | None, route: Route, text: str,
               neighbours: list[Neighbour]) -> Recognition | None:
    """`recogniser` None: films are not recognised (MOVIEGENRE_RECOGNISE_FILMS off); corrections still are."""
    found = recogniser.recognise(text, neighbours, route.name) if recogniser is not None else None
    return found or recognise_correction(neighbours)
