from collections import Counter

import pytest

from service.corpus import CorpusFormatError, build_corpus, corpus_files, detect_format, load_corpus, read_file

from .conftest import REFERENCE, write_generic_csv


def _by_title(fmt: str, filename: str) -> dict:
    return {r.title: r for r in read_file(fmt, REFERENCE / filename)}


def test_reference_folder_files_are_recognised_by_their_headers():
    formats = {path.name: fmt for fmt, path in corpus_files(REFERENCE)}
    assert formats == {
        "tmdb_5000_movies.csv": "tmdb_5000", "mymoviedb.csv": "mymoviedb",
        "movies_overview.csv": "movies_overview", "imdb_movies.csv": "imdb_movies",
    }


def test_tmdb_5000_reads_json_genres_and_year():
    avatar = _by_title("tmdb_5000", "tmdb_5000_movies.csv")["Avatar"]
    assert avatar.year == 2009
    assert avatar.labels == ("Action", "Adventure", "Fantasy", "Science Fiction")


def test_mymoviedb_rows_broken_across_lines_are_repaired():
    films = _by_title("mymoviedb", "mymoviedb.csv")
    dalmatians = films["One Hundred and One Dalmatians"]
    assert dalmatians.year == 1961
    assert dalmatians.plot.startswith("When a litter of dalmatian puppies")
    assert "Cruella hires the criminal Badun brothers" in dalmatians.plot
    assert dalmatians.labels == ("Adventure", "Animation", "Comedy", "Family")
    # the worst one: its metadata fields came apart with ',' and a stray quote inside the genre list
    assert films["Uncharted: Eye of Indra"].labels == ("Action", "Adventure", "Animation")
    assert films["Minecraft: The Story of Mojang"].labels == ("Documentary",)
    # no continuation line was taken for a film of its own
    assert not any(title.startswith(" ") for title in films)


def test_mymoviedb_dates_are_day_first():
    assert _by_title("mymoviedb", "mymoviedb.csv")["Spider-Man: No Way Home"].year == 2021


def test_imdb_movies_genres_carry_non_breaking_spaces():
    creed = _by_title("imdb_movies", "imdb_movies.csv")["Creed III"]
    assert creed.labels == ("Drama", "Action")
    assert creed.year is None


def test_movies_overview_genre_ids_resolve_through_the_id_table():
    shawshank = _by_title("movies_overview", "movies_overview.csv")["The Shawshank Redemption"]
    assert shawshank.labels == ("Drama", "Crime")


def test_movies_overview_without_its_id_table_says_so(tmp_path):
    path = tmp_path / "movies_overview.csv"
    path.write_text("title,overview,genre_ids\nX,A plot.,\"[18]\"\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="movies_overview_genres.csv"):
        list(read_file("movies_overview", path))


def test_generic_format_with_empty_year(tmp_path):
    path = write_generic_csv(tmp_path / "mine.csv", [
        {"title": "Alien", "year": "1979", "plot": "A crew meets a creature.", "genres": "Horror, Science Fiction"},
        {"title": "Heat", "year": "", "plot": "A thief and a cop.", "genres": "Crime,Thriller"},
    ])
    assert detect_format(path) == "generic"
    corpus = load_corpus(path)
    assert [(f.title, f.year, f.genres) for f in corpus.films] == [
        ("Alien", 1979, ("Horror", "Sci-Fi")), ("Heat", None, ("Crime", "Thriller"))]


def test_unrecognised_file_is_refused_with_the_expected_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,text\na,b\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="title,year,plot,genres"):
        load_corpus(path)


def _corpus(tmp_path, *files: list[dict]):
    paths = [write_generic_csv(tmp_path / f"s{i}.csv", rows) for i, rows in enumerate(files)]
    return build_corpus(("generic", p) for p in paths)


def test_deduplication_by_title_and_year(tmp_path):
    corpus = _corpus(tmp_path, [
        {"title": "The Lion King", "year": "1994", "plot": "A lion cub flees.", "genres": "Animation"},
        {"title": "The Lion King", "year": "2019", "plot": "A remake with a cub.", "genres": "Adventure"},
    ], [
        {"title": "the lion king!", "year": "1994", "plot": "Simba grows up.", "genres": "Family"},
        {"title": "The Lion  King", "year": "", "plot": "A cub and a kingdom.", "genres": "Drama"},
    ])
    assert [(f.title, f.year) for f in corpus.films] == [("The Lion King", 1994), ("The Lion King", 2019)]
    assert corpus.sources["s1"].dropped == Counter({"duplicate title": 2})


def test_a_kept_film_without_year_takes_its_duplicates_year(tmp_path):
    corpus = _corpus(tmp_path, [{"title": "Heat", "year": "", "plot": "A thief.", "genres": "Crime"}],
                     [{"title": "Heat", "year": "1995", "plot": "A cop.", "genres": "Crime"}])
    assert [(f.title, f.year) for f in corpus.films] == [("Heat", 1995)]


def test_identical_plots_are_one_film_and_unusable_rows_are_counted(tmp_path):
    corpus = _corpus(tmp_path, [
        {"title": "Se7en", "year": "1995", "plot": "Two detectives hunt a killer.", "genres": "Crime"},
        {"title": "Seven", "year": "1995", "plot": "Two  detectives hunt a killer.", "genres": "Crime"},
        {"title": "No plot", "year": "", "plot": " ", "genres": "Drama"},
        {"title": "Only TV", "year": "", "plot": "Made for TV.", "genres": "TV Movie"},
    ])
    assert [f.title for f in corpus.films] == ["Se7en"]
    stats = corpus.sources["s0"]
    assert (stats.read, stats.kept) == (4, 1)
    assert stats.dropped == Counter({"duplicate plot": 1, "no plot": 1, "no genre": 1})
    assert corpus.unmapped_labels == Counter({"TV Movie": 1})


def test_full_reference_corpus_holds_over_15000_distinct_films():
    corpus = load_corpus(REFERENCE)
    assert len(corpus.films) >= 15000
    assert set(corpus.unmapped_labels) == {"TV Movie", "Foreign"}
    assert set(corpus.genre_counts()) == {g for f in corpus.films for g in f.genres}
    for stats in corpus.sources.values():
        assert stats.read == stats.kept + sum(stats.dropped.values())


def test_reading_a_corpus_closes_every_file_it_opens(tmp_path):
    import gc
    import warnings

    gc.collect()  # what earlier tests left to the collector is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        load_corpus(REFERENCE)
        for fmt, path in corpus_files(REFERENCE):  # abandoned halfway too
            next(iter(read_file(fmt, path)))
        gc.collect()
    names = [path.name for _, path in corpus_files(REFERENCE)]
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert names and not [m for m in unclosed if any(name in m for name in names)], unclosed
