import json
import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from service.build import build_index
from service.store import IndexLoadError, load_index

from .conftest import PROJECT_ROOT, tmdb_rows, write_generic_csv


def test_a_reference_plot_finds_its_own_film_first(small_index, embedder):
    for film in small_index.films[:20]:
        [neighbours] = small_index.search(embedder.embed([film.plot]), k=3)
        assert neighbours[0].film == film
        assert neighbours[0].similarity == pytest.approx(1.0, abs=1e-4)


def test_manifest_describes_the_build(small_index_dir, small_index):
    manifest = json.loads((small_index_dir / "manifest.json").read_text())
    assert manifest["films"] == len(small_index) == 300
    assert manifest["parts"]["english"]["model"] == "all-MiniLM-L6-v2" and manifest["parts"]["english"]["dim"] == 384
    assert manifest["parts"]["multilingual"]["model"] == "multilingual-e5-small"
    assert len(manifest["corpus_fingerprint"]) == 64 and manifest["built_at"]
    assert "Sci-Fi" in manifest["vocabulary"]["labels"] and "Biography" in manifest["vocabulary"]["llm_only"]


def test_rebuild_embeds_only_new_plots(tmp_path):
    corpus = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 30))
    assert build_index(corpus, tmp_path / "index", progress=False).embedded == {"english": 30}
    assert build_index(corpus, tmp_path / "index", progress=False).embedded == {"english": 0}
    write_generic_csv(corpus, tmdb_rows(0, 31))
    report = build_index(corpus, tmp_path / "index", progress=False)
    assert report.embedded == {"english": 1} and report.manifest["films"] == 31
    assert len(list((tmp_path / "index" / "builds").iterdir())) == 2  # the current build and the previous one


def test_missing_index_says_what_to_run(tmp_path):
    with pytest.raises(IndexLoadError, match="make build-index"):
        load_index(tmp_path, "all-MiniLM-L6-v2")


def test_index_of_another_model_or_dim_is_refused(small_index_dir):
    with pytest.raises(IndexLoadError, match="built with all-MiniLM-L6-v2.*make build-index"):
        load_index(small_index_dir, "multilingual-e5-small")
    with pytest.raises(IndexLoadError, match="dim 768"):
        load_index(small_index_dir, "all-MiniLM-L6-v2", dim=768)


def test_damaged_index_is_refused(tmp_path):
    corpus = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 5))
    manifest = build_index(corpus, tmp_path / "index", progress=False).manifest
    (tmp_path / "index" / manifest["build"] / "vectors-english.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexLoadError, match="damaged.*make build-index"):
        load_index(tmp_path / "index", "all-MiniLM-L6-v2")
    (tmp_path / "index" / "manifest.json").write_text("{truncated")
    with pytest.raises(IndexLoadError, match="unreadable"):
        load_index(tmp_path / "index", "all-MiniLM-L6-v2")


# A build in a child process that stops at a chosen point and waits there to be killed.
_KILLABLE_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import service.store as store
    from service.build import build_index
    from service.embedding.onnx import OnnxEmbedder

    corpus, index_dir, point = sys.argv[1:]

    def pause():
        print("PAUSED", flush=True)
        time.sleep(600)

    def stop_before(module, name, when=lambda *a: True):
        original = getattr(module, name)
        def wrapper(*args, **kwargs):
            if when(*args):
                pause()
            return original(*args, **kwargs)
        setattr(module, name, wrapper)

    if point == "embedding":
        stop_before(OnnxEmbedder, "embed")
    elif point == "build-folder-rename":
        stop_before(store, "rename_into_place")
    elif point == "manifest-swap":
        stop_before(store, "write_json", when=lambda path, data: path.parent.name == Path(index_dir).name)
    build_index(Path(corpus), Path(index_dir), progress=False)
""")


def _line_within(stream, seconds: float) -> str | None:
    """The next line of a child's output, or None if none comes in time (a readline alone can wait forever)."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline().strip() if ready else None


@pytest.mark.parametrize("point", ["embedding", "build-folder-rename", "manifest-swap"])
def test_build_killed_midway_leaves_the_previous_index_loadable(tmp_path, point):
    old = write_generic_csv(tmp_path / "old.csv", tmdb_rows(0, 10))
    build_index(old, tmp_path / "index", progress=False)
    new = write_generic_csv(tmp_path / "new.csv", tmdb_rows(10, 12))
    child = subprocess.Popen([sys.executable, "-c", _KILLABLE_BUILD, str(new), str(tmp_path / "index"), point],
                             stdout=subprocess.PIPE, cwd=PROJECT_ROOT, text=True)
    try:
        assert _line_within(child.stdout, seconds=300) == "PAUSED"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    index = load_index(tmp_path / "index", "all-MiniLM-L6-v2")
    assert len(index) == 10 and index.films[0].title == tmdb_rows(0, 1)[0]["title"]
    # and the next build completes over the leftovers
    assert len(build_index(new, tmp_path / "index", progress=False).corpus.films) == 12
    assert len(load_index(tmp_path / "index", "all-MiniLM-L6-v2")) == 12
