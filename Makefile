# Everything a fresh machine needs is installed from here (and pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
INDEX  ?= index
REFERENCE := ../shared/data/reference
EVAL_DATA := ../shared/data/dev-eval/imdb_top_1000.csv
# DATA=path overrides the corpus of build-index, or the evaluation file of eval.

.PHONY: install install-dev run build-index imdb-db test eval bench bench-fresh browser clean

# What the service needs to build its index and serve; install-dev adds the test tools.
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# torch is pinned in the same pip call as everything that depends on it (see pyproject.toml).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev]'
	touch $@

$(INDEX)/manifest.json:
	$(MAKE) build-index DATA=$(REFERENCE)

build-index: install
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre build-index --data $(or $(DATA),$(REFERENCE))

# IMDb's non-commercial datasets → cinemagoer's SQLite database for mode=lookup (needs internet).
imdb-db: install
	$(BIN)/moviegenre imdb-db $(if $(TSV),--tsv $(TSV))

# Serves as soon as the English part of the index is built; builds the rest meanwhile.
run: install
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre serve --build-missing

# Debian's Chromium for the browser test of the web page (Playwright cannot download its own here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)

test: install-dev browser
	$(BIN)/ruff check service tests
	$(BIN)/pytest -q

eval: install $(INDEX)/manifest.json
	$(BIN)/moviegenre eval --data $(or $(DATA),$(EVAL_DATA)) $(if $(LLM),--llm $(LLM)) $(if $(LIMIT),--limit $(LIMIT))

bench: install $(INDEX)/manifest.json
	$(BIN)/moviegenre bench

# A fresh clone of this commit with ../shared beside it: seconds from `make run` to the first answer.
bench-fresh: install
	$(BIN)/moviegenre bench-fresh

clean:
	rm -rf $(VENV) $(INDEX)/builds $(INDEX)/manifest.json
