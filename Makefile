# Everything a fresh machine needs is installed from here (and pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
INDEX  ?= index
REFERENCE := ../shared/data/reference
EVAL_DATA := ../shared/data/dev-eval/imdb_top_1000.csv
# DATA=path overrides the corpus of build-index, or the evaluation file of eval.

.PHONY: install install-dev install-ray install-bench eval-keywords eval-corrections classify-file bench-file calibrate-llm run build-index imdb-db test eval bench bench-fresh browser postgres redis clean

# What the service needs to build its index and serve; install-dev adds the test tools.
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-ray: $(VENV)/.installed-ray
install-bench: $(VENV)/.installed-bench

# torch is pinned in the same pip call as everything that depends on it (see pyproject.toml).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -e .
	touch $@

# the tests cover the optional Ray engine and replicas too, so the test tools come with the ray extra
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev,ray]'
	touch $@

$(VENV)/.installed-ray: $(VENV)/.installed
	$(BIN)/pip install -q torch==2.13.0 -e '.[ray]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install -q torch==2.13.0 -e '.[bench]'
	touch $@

# make classify-file IN=catalogue.csv OUT=genres.parquet [ENGINE=ray] [ARGS="--text-column synopsis --llm"]
classify-file: install $(INDEX)/manifest.json $(if $(filter ray,$(ENGINE)),install-ray)
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre classify-file $(IN) -o $(OUT) --engine $(or $(ENGINE),local) $(ARGS)

# classify-file on 200k rows against /classify/batch, RSS at 10k and 200k rows, the Ray engine on 20k
bench-file: install-ray $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre bench-file

$(INDEX)/manifest.json:
	$(MAKE) build-index DATA=$(REFERENCE)

# make build-index [DATA=corpus.csv] [VOCABULARY=corpus|vocabulary.txt] [INDEX=dir]
build-index: install
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre build-index --data $(or $(DATA),$(REFERENCE)) $(if $(VOCABULARY),--vocabulary $(VOCABULARY))

# IMDb's non-commercial datasets → cinemagoer's SQLite database for mode=lookup (needs internet).
imdb-db: install
	$(BIN)/moviegenre imdb-db $(if $(TSV),--tsv $(TSV))

# Serves as soon as the English part of the index is built; builds the rest meanwhile.
run: install
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre serve --build-missing

# Debian's Chromium for the browser test of the web page (Playwright cannot download its own here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)

# PostgreSQL's server binaries (Debian's), for the tests and the bench of the corrections store in PostgreSQL: they
# start throwaway clusters of their own (service/throwaway_postgres.py); nothing is left running
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)

# Debian's Redis for the tests of rate limits shared by replicas (they start their own throwaway server).
redis:
	@test -x /usr/bin/redis-server || (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)

# Three workers on two cores (pytest-xdist): much of the suite waits on servers, sockets and subprocesses (two workers
# left a third of the CPU idle); the Ray tests share one worker.
test: install-dev browser postgres redis
	$(BIN)/ruff check service tests
	$(BIN)/pytest -q -n 3 --dist loadgroup

eval: install $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre eval --data $(or $(DATA),$(EVAL_DATA)) $(if $(LLM),--llm $(LLM)) $(if $(LIMIT),--limit $(LIMIT))

# the keyword taxonomy of TMDB 5000 (a second vocabulary): an index on a seeded 80%, the service, TF-IDF + LR and
# the zero-shot path on the other 20%; make eval-keywords [LLM=openai LIMIT=100]
eval-keywords: install $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre eval-keywords $(if $(LLM),--llm $(LLM)) $(if $(LIMIT),--limit $(LIMIT))

# half the evaluation films corrected through POST /feedback, then every film asked again (eval/corrections.json)
eval-corrections: install $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre eval-corrections $(if $(DATA),--data $(DATA))

# the configured LLM's say in the answer, measured on validation films and stored for that model:
# make calibrate-llm LLM=openai [N=300]
calibrate-llm: install $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre calibrate-llm $(if $(LLM),--llm $(LLM)) $(if $(N),--films $(N))

bench: install-bench postgres $(INDEX)/manifest.json
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre bench
	MOVIEGENRE_INDEX_DIR=$(INDEX) $(BIN)/moviegenre bench --profile

# A fresh clone of this commit with ../shared beside it: seconds from `make run` to the first answer.
bench-fresh: install
	$(BIN)/moviegenre bench-fresh

clean:
	rm -rf $(VENV) $(INDEX)/builds $(INDEX)/manifest.json
