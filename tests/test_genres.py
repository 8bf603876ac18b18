from collections import Counter

import pytest

from service.genres import DEFAULT, SHARED_GENRES, Vocabulary, from_corpus, from_file, split_labels


def test_tmdb_labels_map_to_imdb_spelling():
    assert DEFAULT.canonical("Science Fiction") == "Sci-Fi"
    assert DEFAULT.canonical("sci-fi") == "Sci-Fi"


def test_labels_that_are_not_genres_map_nowhere():
    assert DEFAULT.canonical("TV Movie") is None
    assert DEFAULT.canonical("Foreign") is None
    assert DEFAULT.map_labels(["Drama", "TV Movie", "Foreign"]) == (["Drama"], ["TV Movie", "Foreign"])


def test_duplicates_after_mapping_are_dropped():
    assert DEFAULT.map_labels(["Sci-Fi", "Science Fiction", "Action"]) == (["Sci-Fi", "Action"], [])


def test_separators_and_non_breaking_spaces():
    assert split_labels("Drama,\xa0Action") == ["Drama", "Action"]
    assert DEFAULT.canonical("\xa0Science\xa0Fiction") == "Sci-Fi"


def test_the_default_vocabulary_is_the_shared_genres_and_imdbs_own():
    assert all(DEFAULT.canonical(g) == g for g in DEFAULT.names)
    assert DEFAULT.labels == SHARED_GENRES and len(SHARED_GENRES) == 18 and "Sci-Fi" in SHARED_GENRES
    assert DEFAULT.llm_only == ("Biography", "Film-Noir", "Musical", "Sport")


def test_a_vocabulary_file_maps_other_sources_labels_onto_its_own(tmp_path):
    path = tmp_path / "vocabulary.txt"
    path.write_text("# a broadcaster's taxonomy\nKrimi: Crime, Thriller, Mystery\nKids: Family, Animation\n"
                    "Heimatfilm\n\nScience-Fiction: Sci-Fi, Science Fiction  # TMDB spells it out\n")
    vocabulary = from_file(path)
    assert vocabulary.labels == ("Krimi", "Kids", "Heimatfilm", "Science-Fiction")
    assert vocabulary.map_labels(["Thriller", "crime", "Science Fiction", "Western", "Heimatfilm"]) == \
        (["Krimi", "Science-Fiction", "Heimatfilm"], ["Western"])


def test_a_vocabulary_file_without_labels_or_with_overlong_ones_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no label"):
        from_file(tmp_path / "empty.txt")
    (tmp_path / "long.txt").write_text("x" * 61 + "\n")
    with pytest.raises(ValueError, match="1 to 60"):
        from_file(tmp_path / "long.txt")


def test_the_corpus_vocabulary_keeps_each_labels_most_frequent_spelling():
    vocabulary = from_corpus(Counter({"Heist": 3, "heist": 1, "Time travel": 5, "time  travel": 2, "Anime": 1}))
    assert vocabulary.labels == ("Time travel", "Heist", "Anime")


def test_labels_with_too_few_films_are_left_to_the_llm():
    vocabulary = Vocabulary(("Heist", "Anime")).with_enough_examples(Counter({"Heist": 12, "Anime": 2}))
    assert vocabulary.labels == ("Heist",) and vocabulary.llm_only == ("Anime",)
    assert Vocabulary.from_manifest(vocabulary.to_dict()) == vocabulary
    assert Vocabulary.from_manifest(list(DEFAULT.names)) == DEFAULT  # a manifest of an earlier build
