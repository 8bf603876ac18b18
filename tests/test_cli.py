import json

from service.cli import main

WIZARD = "A young wizard embarks on an adventure to defeat a dark sorcerer."


def test_classify_runs_the_pipeline_without_a_server(small_index_dir, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(small_index_dir))
    monkeypatch.setenv("LLM_BACKEND", "none")
    assert main(["classify", "--json", WIZARD]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert {"Fantasy", "Adventure"} & set(answer["genres"]) and answer["backend"] == "vote"


def test_a_missing_index_is_a_message_and_an_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(tmp_path))
    assert main(["classify", WIZARD]) == 2
    assert "make build-index" in capsys.readouterr().out
