"""The recognise and corrections stages: the reference film a description tells of (the evidence weighed by the
route's model, recognition.py), or the film an editor's correction answers for (a text that is the corrected one,
or as good as); when neither is sure, the scores lean on the close films by how likely each is the film described."""
from __future__ import annotations

from service.pipeline.routes import Route
from service.recognition import Reading, Recogniser, Recognition, expected, recognise_correction
from service.store import Neighbour


def recognised(recogniser: Recogniser | None, route: Route, text: str, neighbours: list[Neighbour],
               scores: dict[str, float]) -> tuple[Recognition | None, dict[str, float]]:
    """The film (or series) recognised, and the scores to answer from without one (recognition.expected).
    `recogniser` None: films are not recognised (MOVIEGENRE_RECOGNISE_FILMS off); corrections still are."""
    reading = recogniser.read(text, neighbours, route.name) if recogniser is not None else Reading(None)
    found = reading.recognition or recognise_correction(neighbours)
    return found, scores if found is not None or not reading.likely else expected(scores, reading.likely)
