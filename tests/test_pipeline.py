"""The classifier's stages one by one (service/pipeline/): each does its part of the answer, and only its part."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

from service.calibration import Fusion
from service.corpus import Film
from service.genres import DEFAULT
from service.language import Detection
from service.llm import LLMError
from service.pipeline.draft import CORRECTED, drafted
from service.pipeline.fuse import fuse_picks
from service.pipeline.llm import NO_SAY, LLMStage
from service.pipeline.recognise import recognised
from service.pipeline.retrieve import retrieve
from service.pipeline.routes import route_all
from service.pipeline.vote import vote_and_heads
from service.recognition import Recognition
from service.store import Neighbour
from service.vote import vote

from .conftest import make_classifier


@pytest.fixture(scope="module")
def classifier(small_index_dir):
    classifier = make_classifier(small_index_dir)
    yield classifier
    classifier.close()


def test_the_route_stage_sends_english_and_untold_text_to_the_english_part(classifier):
    english, multilingual = classifier.english, classifier.multilingual
    detections = [Detection("en", 0.9), Detection("de", 0.9), Detection(None, 0.2), Detection("zh", 0.8)]
    assert route_all(detections, english, multilingual) == {english: [0, 2], multilingual: [1, 3]}
    assert route_all(detections, english, None) == {english: [0, 1, 2, 3]}  # no multilingual part yet


def test_the_retrieve_stage_finds_a_films_own_plot_first_and_a_batch_finds_what_one_by_one_finds(classifier):
    route, films = classifier.english, classifier.index.films[:20]
    found = retrieve(route, [f.plot for f in films], 25, 2, None)  # 20 queries: the search is split
    assert [n[0].film for n in found.neighbours] == films and all(n[0].similarity > 0.99 for n in found.neighbours)
    one_by_one = [retrieve(route, [f.plot], 25, 1, None).neighbours[0] for f in films[:3]]
    assert [[n.film for n in row] for row in one_by_one] == [[n.film for n in row] for row in found.neighbours[:3]]
    assert found.vectors.shape == (20, route.embedder.dim)


def test_the_vote_stage_blends_the_heads_where_a_route_has_them(classifier):
    route = classifier.english
    texts = ["A young wizard embarks on an adventure to defeat a dark sorcerer."]
    found = retrieve(route, texts, 25, 1, None)
    blended = vote_and_heads(route, texts, found)
    alone = vote_and_heads(dataclasses.replace(route, scorer=None), texts, found)
    assert alone == [vote(found.neighbours[0])] and blended != alone
    assert set(blended[0]) <= set(DEFAULT.names) and {"Fantasy", "Adventure"} & set(sorted(
        blended[0], key=lambda g: -blended[0][g])[:3])


def _film(title: str, genres: tuple[str, ...], source: str = "tmdb_5000") -> Film:
    return Film(title, 2001, f"The story of {title}.", genres, source)


def test_the_recognise_stage_answers_for_corrections_even_with_recognition_off(classifier):
    corrected = _film("A corrected film", ("Horror",), "correction")
    other = _film("Another film", ("Drama",))
    scores = {"Drama": 0.6}
    assert recognised(None, classifier.english, "text", [Neighbour(corrected, 0.99), Neighbour(other, 0.5)],
                      scores) == (Recognition(corrected, 0.99), scores)
    assert recognised(None, classifier.english, "text", [Neighbour(corrected, 0.80), Neighbour(other, 0.5)],
                      scores) == (None, scores)
    assert recognised(None, classifier.english, "text", [Neighbour(other, 0.99), Neighbour(corrected, 0.5)],
                      scores) == (None, scores)


def test_the_draft_answers_a_recognised_film_with_its_own_labels_and_a_correction_with_high_confidence(classifier):
    route = classifier.english
    neighbours = [Neighbour(_film("Known", ("Western", "Drama")), 0.9), Neighbour(_film("Other", ("Comedy",)), 0.5)]
    scores = {"Comedy": 0.8, "Western": 0.1, "Drama": 0.35}
    vector = route.embedder.embed(["A cowboy rides west."])[0]
    plain = drafted(route, vector, neighbours, scores, None, 5)
    known = drafted(route, vector, neighbours, scores, Recognition(neighbours[0].film, 0.9), 5)
    corrected = drafted(route, vector, neighbours, scores, Recognition(_film("Fixed", ("Horror",), "correction"),
                                                                       0.99), 5)
    assert plain.genres[0] == "Comedy" and plain.backend == "vote" and plain.vote_genres == plain.genres
    assert known.genres == ["Western", "Drama"] and list(known.scores)[:2] == ["Western", "Drama"]
    assert corrected.genres == ["Horror"] and (corrected.confidence, corrected.confidence_reason) == ("high", CORRECTED)


def test_the_fuse_stage_moves_borderline_genres_and_leaves_recognised_films_and_no_say_routes_alone(classifier):
    route = dataclasses.replace(classifier.english, threshold=0.3, fusion=Fusion(0.2, 0.1))
    vector = classifier.embedder.embed(["x"])[0]

    def draft(recognition=None):
        return drafted(route, vector, [], {"Drama": 0.6, "Romance": 0.25, "War": 0.05}, recognition, 5)

    fused = draft()
    fuse_picks(fused, ["Romance", "War"], route, 5)
    assert draft().genres == ["Drama"] and fused.genres == ["Drama", "Romance"]  # 0.8 × 0.25 + 0.2; War < floor
    no_say = draft()
    fuse_picks(no_say, ["Romance"], dataclasses.replace(route, fusion=Fusion(0.0, 0.1)), 5)
    known = draft(Recognition(_film("Known", ("Drama",)), 0.9))
    fuse_picks(known, ["Romance"], route, 5)
    assert no_say.genres == ["Drama"] and known.genres == ["Drama"]


class ScriptedGate:
    """The LLM gate's face, answering from a script."""
    name = "openai"

    def __init__(self, answers):
        self.answers, self.questions = answers, []

    def describe(self) -> str:
        return "openai:scripted"

    async def ask(self, questions, budget_s, consumer="local"):
        self.questions += questions
        return self.answers[:len(questions)]

    def ask_blocking(self, questions, budget_s=None):
        return asyncio.run(self.ask(questions, budget_s))


def _stage(classifier, gate, weight=0.2) -> LLMStage:
    routes = {r.name: dataclasses.replace(r, fusion=Fusion(weight, 0.1)) for r in classifier.routes()}
    return LLMStage(gate, classifier.vocabulary, routes, classifier.label_scorer, 8, 5)


def test_the_llm_stage_asks_about_what_it_may_change_and_takes_its_answer(classifier):
    texts = ["A young wizard embarks on an adventure to defeat a dark sorcerer.", "A film the reference holds."]
    drafts = classifier.draft(texts)
    drafts[1].recognised = Recognition(classifier.index.films[0], 0.95)
    gate = ScriptedGate([["Fantasy", "Family"]])
    stage = _stage(classifier, gate)
    asyncio.run(stage.run(texts, drafts, budget_s=5.0))
    [question] = gate.questions
    assert texts[0] in question.messages[-1]["content"] and question.vocabulary.names == DEFAULT.names
    assert drafts[0].backend == "openai" and drafts[0].llm_genres == ["Fantasy", "Family"]
    assert drafts[1].backend == "vote" and drafts[1].llm_outcome is None  # a recognised film is not asked about


def test_the_llm_stage_says_why_the_vote_stands(classifier):
    texts = ["Two detectives hunt a serial killer through a rainy city."] * 2
    no_say = classifier.draft(texts[:1])
    _stage(classifier, ScriptedGate([]), weight=0.0).run_blocking(texts[:1], no_say)
    assert no_say[0].fallback_reason == NO_SAY.format(model="openai:scripted", route="english")
    drafts = classifier.draft(texts)
    stage = _stage(classifier, ScriptedGate([LLMError("the LLM is busy: full", "busy"),
                                             LLMError("the LLM did not answer within 5 s", "timed_out")]))
    stage.run_blocking(texts, drafts)
    assert [d.llm_outcome for d in drafts] == ["busy", "timed_out"] and all(d.backend == "vote" for d in drafts)
    assert stage.last_error == "the LLM did not answer within 5 s"  # a busy LLM is no broken one
    assert drafts[0].genres == drafts[0].vote_genres


def test_the_llm_stage_asks_with_a_requests_own_labels_when_the_index_lacks_some(classifier):
    texts = ["A crew of thieves plans to rob three casinos on the same night."]
    labels = ["Heist", "Crime", "夏天"]
    drafts = classifier.draft(texts, labels)
    gate = ScriptedGate([["Heist", "夏天"]])
    _stage(classifier, gate).run_blocking(texts, drafts)
    assert gate.questions[0].vocabulary.names == tuple(labels)
    scores = {s.label: (s.score, s.source) for s in drafts[0].label_scores}
    assert scores["Heist"][1] == "llm" and scores["夏天"][1] == "llm" and scores["Crime"][1] == "index"
    assert "Heist" in drafts[0].genres and "夏天" in drafts[0].genres
