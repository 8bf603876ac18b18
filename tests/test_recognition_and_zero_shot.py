"""Known films told in another language are recognised by the names they share with the reference's plot, and a
request's own labels rank the label a description is obviously about first (no LLM)."""
import pytest

from service.recognition import Names

from .conftest import make_classifier

# German retellings written for these tests (not TMDB's translations): the films are in the small reference, whose
# English plots name the same people and places
GERMAN_RETELLINGS = {
    "Frozen": "Prinzessin Anna aus Arendelle bricht mit dem Eislieferanten Kristoff, seinem Rentier Sven und dem "
              "sprechenden Schneemann Olaf auf, um ihre Schwester Elsa zu finden, deren Zauberkraft das Königreich "
              "in ewigen Winter gestürzt hat.",
    "Jurassic World": "Jahre nach dem Unglück im Jurassic Park lockt auf der Insel Isla Nublar ein neuer Freizeitpark "
                      "mit lebenden Dinosauriern Tausende Besucher an, bis ein im Labor gezüchteter Saurier ausbricht.",
}
# a story of no film of the reference, with as many names
GERMAN_UNKNOWN = ("Der Leuchtturmwärter Henrik Larsson und seine Tochter Maja retten vor der Küste von Bergen einen "
                  "verletzten Wal, den sie Oskar nennen, und verstecken ihn vor dem Fischer Gunnar.")


@pytest.fixture(scope="module")
def classifier(small_index_dir):
    classifier = make_classifier(small_index_dir)
    yield classifier
    classifier.close()


@pytest.mark.parametrize("title", list(GERMAN_RETELLINGS))
def test_a_german_retelling_of_a_known_film_is_recognised_by_the_names_it_shares(classifier, title):
    result = classifier.classify(GERMAN_RETELLINGS[title])
    assert result.route == "multilingual" and result.recognised is not None
    assert result.recognised.film.title == title and result.genres == list(result.recognised.film.genres)[:5]


def test_a_story_of_no_known_film_is_not_recognised_whatever_names_it_has(classifier):
    result = classifier.classify(GERMAN_UNKNOWN)
    assert result.route == "multilingual" and result.recognised is None


def test_common_nouns_written_capitalised_are_not_names():
    from service.corpus import Film

    films = [Film(t, None, p, ("Drama",), "test") for t, p in [
        ("Agent Zero", "An agent of the city hires a doctor."), ("City Lights", "The city agent meets Lecter."),
        ("Doctor Sleep", "A doctor and an agent leave the city for Gotham.")]]
    weights = Names(films).weights()
    assert {"Lecter", "Gotham", "Zero", "Lights", "Sleep"} <= set(weights)
    assert not {"Agent", "City", "Doctor"} & set(weights)  # the reference mostly writes them in lower case


@pytest.mark.parametrize("text, obvious, others", [
    ("Four old friends, a locksmith among them, plan to slip into a bank's underground vault on the night of a "
     "blackout and leave with the gold.", "Heist", ["Time travel", "Zombies", "Coming of age"]),
    ("A teenage girl spends her last summer before college working at a diner, falling in love and learning who "
     "she wants to become.", "Coming of age", ["Heist", "Zombies", "Space station"]),
    ("Nach einem Virusausbruch irren die lebenden Toten durch die Straßen, und eine Familie verbarrikadiert sich "
     "in einem Supermarkt.", "Zombies", ["Heist", "Time travel", "Coming of age"]),
])
def test_the_label_a_description_is_obviously_about_leads_without_an_llm(classifier, text, obvious, others):
    scores = {s.label: s for s in classifier.classify(text, labels=[*others, obvious]).label_scores}
    assert scores[obvious].source == "embedding"
    assert scores[obvious].score > max(scores[label].score for label in others)


def test_an_index_built_now_stays_readable_by_the_version_before(small_index_dir):
    import json

    from service.labels import PROTOTYPE_PLOTS, ZeroShotScale

    for part in json.loads((small_index_dir / "manifest.json").read_text())["parts"].values():
        # the version before built its scale as ZeroShotScale(**part["zero_shot"]) with these three fields
        assert set(part["zero_shot"]) == {"weight", "bias", "threshold"}
        assert ZeroShotScale.of_part(part).prototype_plots == PROTOTYPE_PLOTS
    assert ZeroShotScale.of_part({"zero_shot": {"weight": 1.0, "bias": 0.0, "threshold": 0.5}}).prototype_plots == 0


def test_common_nouns_shared_with_a_film_do_not_count_as_its_names():
    from service.corpus import Film

    def film(title, plot):
        return Film(title, None, plot, ("Drama",), "test")

    others = [film(f"Film {i}", "an agent from the city meets a doctor in the city.") for i in range(20)]
    target = film("Smithereens", "Agent Smith walks into the City with Doctor Lanyon.")
    names = Names([target, *others])
    # one name (Smith) beside three common nouns the reference writes in lower case
    described = names.described("Der Agent Smith fährt in die City zu einem Doctor.")
    assert described == {"Smith"} and names.shared(described, "", target).count == 1
    described = names.described("Agent Smith trifft Doctor Lanyon in der City; Smithereens.")
    assert described == {"Smith", "Lanyon"}  # "Smithereens" opens its sentence: no name of its own
