from service.genres import SHARED_GENRES, VOCABULARY, canonical_genre, map_labels, split_labels


def test_tmdb_science_fiction_is_imdb_sci_fi():
    assert canonical_genre("Science Fiction") == "Sci-Fi"
    assert canonical_genre("sci-fi") == "Sci-Fi"


def test_labels_that_are_not_story_genres_map_nowhere():
    assert canonical_genre("TV Movie") is None
    assert canonical_genre("Foreign") is None
    assert map_labels(["Drama", "TV Movie", "Foreign"]) == (["Drama"], ["TV Movie", "Foreign"])


def test_mapping_drops_duplicates_and_keeps_order():
    assert map_labels(["Sci-Fi", "Science Fiction", "Action"]) == (["Sci-Fi", "Action"], [])


def test_non_breaking_spaces_are_whitespace():
    assert split_labels("Drama,\xa0Action") == ["Drama", "Action"]
    assert canonical_genre("\xa0Science\xa0Fiction") == "Sci-Fi"


def test_every_vocabulary_name_maps_to_itself():
    assert all(canonical_genre(g) == g for g in VOCABULARY)
    assert len(SHARED_GENRES) == 18 and "Sci-Fi" in SHARED_GENRES
