import json
import re
import subprocess
import sys

import pytest

from service.batch import run
from service.batch.records import CatalogueError
from service.cli import main

WIZARD = "A young wizard embarks on an adventure to defeat a dark sorcerer."

# every command and the options the Makefile, the scripts, the README and the users pass to it
OPTIONS = {
    "build-index": ["--data", "--vocabulary"],
    "classify": ["--json"],
    "classify-file": ["-o", "--output", "--text-column", "--engine", "--chunk-rows", "--llm", "--llm-concurrency",
                      "--actors", "--object-store-mb", "--quiet", "--metrics-file"],
    "serve": ["--build-missing", "--data", "--replicas", "--replica-cpus"],
    "eval": ["--data", "--llm", "--limit", "--language-limit", "--out", "--no-languages", "--no-fp32"],
    "eval-keywords": ["--llm", "--limit", "--out"],
    "eval-corrections": ["--data", "--seed", "--limit", "--out"],
    "calibrate-llm": ["--films", "--foreign-films", "--llm", "--no-languages"],
    "bench": ["--out", "--only", "--against"],
    "bench-file": ["--rows", "--ray-rows", "--out"],
    "tune-recognition": ["--data", "--dry-run"],
    "bench-fresh": [],
    "imdb-db": ["--tsv"],
}


def test_classify_runs_the_pipeline_without_a_server(small_index_dir, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(small_index_dir))
    monkeypatch.setenv("LLM_BACKEND", "none")
    assert main(["classify", "--json", WIZARD]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert {"Fantasy", "Adventure"} & set(answer["genres"]) and answer["backend"] == "vote"


def test_classify_prints_the_genres_and_who_answered(small_index_dir, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(small_index_dir))
    monkeypatch.setenv("LLM_BACKEND", "none")
    assert main(["classify", WIZARD]) == 0
    genres, answered = capsys.readouterr().out.splitlines()
    assert {"Fantasy", "Adventure"} & set(genres.split(", ")) and answered == "answered by vote"


def test_a_missing_index_is_a_message_and_an_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(tmp_path))
    assert main(["classify", WIZARD]) == 2
    assert "make build-index" in capsys.readouterr().out


@pytest.mark.parametrize("command", OPTIONS)
def test_every_command_explains_its_options(command, capsys):
    assert main([command, "--help"]) == 0
    shown = set(re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", capsys.readouterr().out))
    assert set(OPTIONS[command]) <= shown


def test_the_tool_lists_its_commands_and_takes_h_for_help(capsys):
    assert main(["-h"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("Usage: moviegenre") and all(f"  {command} " in listing for command in OPTIONS)
    assert main(["classify-file", "-h"]) == 0 and "--chunk-rows" in capsys.readouterr().out


def test_python_m_service_cli_is_the_tool_and_its_help_loads_no_model():
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: moviegenre serve" in done.stdout and "--replicas" in done.stdout
    loaded = subprocess.run([sys.executable, "-c", "import sys; from service.cli import main; "
                             "main(['classify-file', '--help']); "
                             "print(sorted({'onnxruntime', 'faiss', 'torch', 'numpy'} & set(sys.modules)))"],
                            capture_output=True, text=True)
    assert loaded.returncode == 0 and loaded.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv, says", [
    (["no-such-command"], "No such command 'no-such-command'"),
    ([], "Missing command"),
    (["classify"], "Missing argument"),
    (["classify-file", "films.csv"], "Missing option '-o' / '--output'"),
    (["classify-file", "films.csv", "-o", "out.csv", "--chunk-rows", "0"], "at least 1, not '0'"),
    (["classify-file", "films.csv", "-o", "out.csv", "--engine", "spark"], "'spark' is not one of 'local', 'ray'"),
    (["classify-file", "films.csv", "-o", "out.csv", "--llm", "gpt"], "invalid choice: 'gpt'"),
    (["eval", "--llm", "gpt"], "'gpt' is not one of 'ollama', 'openai'"),
    (["serve", "--replicas", "two"], "--replicas"),
])
def test_a_usage_error_is_a_message_on_stderr_and_exit_2(argv, says, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert says in err and "Traceback" not in err and out == ""


def test_a_configuration_error_is_one_message_and_exit_2(small_index_dir, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(small_index_dir))
    monkeypatch.setenv("MOVIEGENRE_API_KEY", "")
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert " ".join(out.split()).startswith("MOVIEGENRE_API_KEY is set but names no key")
    assert "Traceback" not in out + err


@pytest.mark.parametrize("llm, asked", [([], None), (["--llm"], "openai"), (["--llm", "ollama"], "ollama"),
                                        (["--llm", "--quiet"], "openai"), (["--llm=ollama"], "ollama")])
def test_classify_file_asks_the_llm_named_or_else_the_configured_one(llm, asked, monkeypatch, capsys):
    monkeypatch.setenv("LLM_BACKEND", "openai")
    jobs = []

    def job_of(source, output, settings, column=None, chunk_rows=2000, with_llm=False):
        jobs.append((settings.llm.backend if with_llm else None, chunk_rows, column))
        raise CatalogueError("stopped before reading the file")

    monkeypatch.setattr(run.Job, "of", job_of)
    assert main(["classify-file", "films.csv", "-o", "out.csv", *llm, "--text-column", "synopsis"]) == 2
    assert jobs == [(asked, 2000, "synopsis")] and "stopped before reading" in capsys.readouterr().out


def test_a_bare_llm_with_no_llm_configured_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("LLM_BACKEND", "none")
    assert main(["classify-file", "films.csv", "-o", "out.csv", "--llm"]) == 2
    assert "invalid choice: 'none'" in capsys.readouterr().err


def test_a_failed_download_of_imdb_says_what_to_do_and_exits_1(tmp_path, monkeypatch, capsys):
    import httpx

    from service.lookup import imdb

    def unreachable(folder):
        raise httpx.ConnectError("no route to datasets.imdbws.com")

    monkeypatch.setenv("IMDB_DB", str(tmp_path / "imdb" / "cinemagoer.db"))
    monkeypatch.setattr(imdb, "download_datasets", unreachable)
    assert main(["imdb-db"]) == 1
    out, err = capsys.readouterr()
    said = " ".join(out.split())
    assert "download failed (no route to datasets.imdbws.com); with the files at hand: make imdb-db TSV=folder" in said
    assert "Traceback" not in err
