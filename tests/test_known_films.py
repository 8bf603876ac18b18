"""Film identity (films.py), series places (series.py), names (names.py) and recognition that tells a film from its
sequel, with texts written for these tests."""
import pytest

from service.corpus import Film
from service.films import TitleIndex, normalise_title
from service.names import Names, candidate_names
from service.series import Series, numbers_named, one_series
from service.store import Neighbour

from .conftest import make_classifier, served_settings, tmdb_rows, write_generic_csv

# a German description that names its film, the third of a series whose first film it shares its names with
KUNG_FU_PANDA_3 = ("In Kung Fu Panda 3 trainiert Po, der Drachenkrieger, unter Meister Shifu mit Tigress, "
                   "Crane, Mantis, Viper und Monkey. Da taucht sein leiblicher Vater Li auf und führt ihn in ein "
                   "verborgenes Pandadorf, während der Geisterkrieger Kai aus der Geisterwelt zurückkehrt und den "
                   "Meistern ihr Chi raubt.")
# a German story of no film whose capitalised words are nouns and sentence openers ("Der", "Das", "Nach", "Als")
NOUNS_AND_OPENERS = ("Der Lehrer denkt an seine Jugend zurück. Das Kino seiner Heimat zeigte alte Filme, und die "
                     "Schauspielerin schrieb ihm Briefe. Nach vielen Jahren fährt er zu ihr. Als er sie wiedersieht, "
                     "ist sie alt und krank.")
# an English plot that names German films by their titles: "Das", "Der", "Nach", "Als" written capitalised mid-sentence
GERMAN_TITLES_FILM = {"title": "Die Welle der Erinnerung", "year": 2011, "genres": "Drama", "companies": "",
                      "plot": "A film critic in Hamburg rewatches Das Boot, Der Untergang, Nach dem Sturm and Als wir "
                              "träumten, the German films of his youth, and writes to the actress he once loved."}
# "Nachts im Museum 2" is the German title of Night at the Museum: Battle of the Smithsonian
NIGHT_AT_THE_MUSEUM_2 = ("Nachtwächter Larry Daley muss seinen lebendigen Ausstellungsstücken helfen, die in die "
                         "Archive der Smithsonian Institution verlegt wurden. Dort trifft er auf die Fliegerin "
                         "Amelia Earhart und einen machthungrigen Pharao.")


def film(title, year=None, aliases=()):
    return Film(title, year, "", ("Drama",), "test", (), tuple(aliases))


def test_a_title_names_one_film_several_or_none():
    films = [film("Halloween", 1978), film("Halloween", 2007), film("Spirited Away", 2001, ["千と千尋の神隠し"]),
             film("Léon", 1994, ["The Professional"])]
    titles = TitleIndex(films)
    assert titles.named("halloween").kind == "several" and titles.named("Halloween", 2007).films == (films[1],)
    assert titles.named("千と千尋の神隠し", 2001).kind == "one" and titles.named("LEON").positions == (3,)
    assert titles.named("Halloween", 1990).kind == "none" and titles.named("Ghost").kind == "none"
    assert titles.of(film("The Professional", 1994)).films == (films[3],)
    assert titles.of(film("Leon", None)).films == (films[3],) and titles.of(films[0]).films == (films[0],)


def test_titles_in_scripts_with_vowel_signs_stay_whole_words_and_optional_vowel_marks_fold():
    # a Devanagari vowel sign is part of its letter: "हम आपके हैं कौन" is four words, and "कौन" is not "कन"
    assert normalise_title("हम आपके हैं कौन") == "हम आपके हैं कौन"
    assert normalise_title("मुग़ल-ए-आज़म") == "मुग़ल ए आज़म"
    titles = TitleIndex([film("Kaun", 1999, ["कौन"]), film("Kan", 2001, ["कन"])])
    assert titles.named("कौन").films == (titles.films[0],)
    # Arabic harakat, Hebrew niqqud and Cyrillic ё are left out by many writers: both spellings name one film
    assert normalise_title("الرِّسَالَة") == normalise_title("الرسالة")
    assert normalise_title("Ёлки") == normalise_title("Елки")


# the titles a catalogue holds: a number ending a title is a place only where the catalogue shows the series around it
CATALOGUE = ["The Terminator", "Terminator 2: Judgment Day", "Rocky", "Rocky II", "Rocky III", "Rocky IV",
             "Star Wars", "Star Wars: Episode IV - A New Hope", "The Godfather", "The Godfather Part II",
             "The Godfather: Part III", "Back to the Future", "Back to the Future Part II", "Friday the 13th",
             "Friday the 13th Part 2", "Friday the 13th Part VIII: Jason Takes Manhattan", "It", "It Chapter Two",
             "John Wick", "John Wick: Chapter 3 - Parabellum", "Ride Along", "Ride Along 2", "Blade Runner",
             "Blade Runner 2049", "Apollo 11", "Apollo 13", "Apollo 18", "District 9", "Super", "Super 8",
             "Ocean's Eleven", "Ocean's Twelve", "2001: A Space Odyssey", "2010", "Saw IV", "Saw V",
             "Nachts im Museum", "Nachts im Museum 3: Das geheimnisvolle Grabmal", "Der Pate", "Der Pate – Teil II",
             "Крёстный отец", "Крёстный отец 2", "Le Parrain, 2e partie", "千と千尋の神隠し"]


@pytest.mark.parametrize("title, series, number", [
    ("Terminator 2: Judgment Day", "terminator", 2), ("The Terminator", "terminator", None), ("Rocky IV", "rocky", 4),
    ("Star Wars: Episode IV - A New Hope", "star wars", 4), ("The Godfather: Part II", "godfather", 2),
    ("The Godfather Part II", "godfather", 2), ("Back to the Future Part II", "back to the future", 2),
    ("Friday the 13th Part 2", "friday the 13th", 2), ("Friday the 13th Part VIII: Jason Takes Manhattan",
                                                        "friday the 13th", 8),
    ("It Chapter Two", "it", 2), ("John Wick: Chapter 3 - Parabellum", "john wick", 3),
    ("Ride Along 2", "ride along", 2), ("Blade Runner 2049", "blade runner 2049", None),
    ("Apollo 13", "apollo 13", None), ("Apollo 18", "apollo 18", None), ("District 9", "district 9", None),
    ("Super 8", "super 8", None), ("Ocean's Eleven", "ocean s eleven", None), ("2010", "2010", None),
    ("2001: A Space Odyssey", "2001", None), ("Saw V", "saw", 5),
    ("Nachts im Museum 3: Das geheimnisvolle Grabmal", "nachts im museum", 3), ("Der Pate – Teil II", "der pate", 2),
    ("Крёстный отец 2", normalise_title("Крёстный отец"), 2), ("千と千尋の神隠し", "千と千尋の神隠し", None)])
def test_a_title_tells_its_place_in_its_series(title, series, number):
    position = Series(CATALOGUE).position(title)
    assert (position.series, position.number) == (series, number)


def test_the_godfather_part_ii_is_the_second_film_of_the_godfathers_series_and_names_it():
    catalogue = Series(CATALOGUE)
    first, second = catalogue.position("The Godfather"), catalogue.position("The Godfather Part II")
    assert one_series(first, second) and (first.number, second.number) == (None, 2) and first.first
    assert second.name == "The Godfather" and catalogue.position("Terminator 2: Judgment Day").name == "Terminator"
    # numbers that are part of a name make no series: Apollo 11, 13 and 18 are three films of none
    assert not one_series(catalogue.position("Apollo 13"), catalogue.position("Apollo 18"))
    assert not one_series(catalogue.position("Super"), catalogue.position("Super 8"))


def test_a_text_gives_a_series_its_numbers():
    assert numbers_named("ben und james kehren in ride along 2 zurück", "ride along") == {2}
    assert numbers_named("rocky iii und rocky iv", "rocky") == {3, 4}
    assert numbers_named("ride along the river", "ride along") == set()
    assert numbers_named("michael corleone in the godfather part ii", "godfather") == {2}
    assert numbers_named("the losers return in it chapter two", "it") == {2}
    assert numbers_named("der pate teil zwei und der pate teil 3", "der pate") == {2, 3}
    assert numbers_named("after the godfather the family moves", "godfather") == set()


def test_a_text_naming_apollo_11_does_not_contradict_apollo_13():
    from service.evidence import Evidence

    films = [film("Apollo 11", 2019), film("Apollo 13", 1995), film("Apollo 18", 2011)]
    text = "Years after Apollo 11, three astronauts of Apollo 13 fight to bring their damaged ship home."
    candidates = Evidence(Names(films)).candidates(text, [Neighbour(f, 0.8 - i / 10) for i, f in enumerate(films)])
    assert [c.contradicted for c in candidates] == [False, False, False]
    assert all(c.siblings == () for c in candidates)


def test_names_are_words_capitalised_mid_sentence_that_no_stop_word_list_holds():
    assert candidate_names("Als Luke Skywalker auf Endor landet, wartet Darth Vader. Der Imperator lacht.") == {
        "Luke", "Skywalker", "Endor", "Darth", "Vader", "Imperator"}  # a German noun is a candidate; no weight
    assert candidate_names("Les deux amis partent. Mais Elle refuse, quand Pierre arrive à Paris.") == {"Pierre",
                                                                                                        "Paris"}
    assert candidate_names("Mr. Church meets Dr. Lecter.") == {"Church", "Lecter"}
    assert candidate_names("一个年轻的巫师 🧙 مغامرة لهزيمة ساحر") == set()


def test_text_in_any_script_is_weighed_and_a_title_in_a_script_without_spaces_names_its_film():
    from service.evidence import FEATURES
    from service.recognition import Recogniser
    from service.store import Neighbour

    spirited = Film("Spirited Away", 2001, "Chihiro wanders into a world of spirits ruled by the witch Yubaba.",
                    ("Animation",), "test", (), ("千と千尋の神隠し",))
    others = [Film(f"Film {i}", 2000 + i, "A quiet story of a family by the sea.", ("Drama",), "test")
              for i in range(5)]
    recogniser = Recogniser([spirited, *others], models={})
    neighbours = [Neighbour(spirited, 0.85), *[Neighbour(f, 0.8) for f in others]]
    texts = ("🎬 千と千尋の神隠し 🐉 少女千尋は湯屋で働く。", "مغامرة 🐉 千と千尋の神隠し", "🧙‍♂️ vs 🐉 🔥",
             "\u202eevil wizard")
    for text in texts:
        candidates = recogniser.evidence.candidates(text, neighbours)
        assert [c.film for c in candidates] == [spirited, *others]
        named = candidates[0].features[FEATURES.index("title_named")]
        assert named == (1.0 if "千と千尋の神隠し" in text else 0.0)


def test_a_german_description_naming_a_sequel_is_not_taken_for_the_first_film(small_index_dir):
    classifier = make_classifier(small_index_dir)
    try:
        result = classifier.classify(KUNG_FU_PANDA_3)
    finally:
        classifier.close()
    assert result.route == "multilingual" and result.neighbours[0].film.title == "Kung Fu Panda"
    assert result.recognised is None or result.recognised.film.title == "Kung Fu Panda 3"


@pytest.fixture(scope="module")
def german_titles_index(tmp_path_factory):
    """100 real films and one whose English plot names German films, both index parts."""
    from service.build import build_index

    folder = tmp_path_factory.mktemp("german-titles")
    corpus = write_generic_csv(folder / "films.csv", tmdb_rows(0, 100) + [GERMAN_TITLES_FILM])
    build_index(corpus, folder / "index", served_settings(multilingual_model="multilingual-e5-small"), progress=False)
    return folder / "index"


def test_a_german_text_of_nouns_and_sentence_openers_is_not_recognised(german_titles_index):
    classifier = make_classifier(german_titles_index)
    try:
        result = classifier.classify(NOUNS_AND_OPENERS)
    finally:
        classifier.close()
    assert result.route == "multilingual" and result.neighbours[0].film.title == GERMAN_TITLES_FILM["title"]
    assert result.recognised is None  # "Der", "Das", "Nach", "Als" open sentences: no names


def test_the_exclusion_removes_a_translated_reference_film_title_matching_misses(small_index_dir):
    from service.evaluation.exclusion import exclusion

    classifier = make_classifier(small_index_dir)
    try:
        parts = {route.name: route.index for route in classifier.routes()}
        held_out = [Film("Nachts im Museum 2", 2009, NIGHT_AT_THE_MUSEUM_2, ("Comedy", "Family"), "de")]
        vectors = {route.name: route.embedder.embed([NIGHT_AT_THE_MUSEUM_2], role="passage")
                   for route in classifier.routes()}
        excluded = exclusion(parts, held_out, vectors)
    finally:
        classifier.close()
    titles = [parts["english"].films[i].title for i in excluded.positions]
    assert excluded.by_title == 0 and "Night at the Museum: Battle of the Smithsonian" in titles
