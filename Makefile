# bookrec: `make run` starts the local stack with real data, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PACKAGES := services/catalog services/common services/search services/bookdetail services/ratings services/recommendation data-processing \
            tooling loadtest
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)

.PHONY: deps lock lock-checkov checkov system-deps test test-fast run up down status logs bench bench-search bench-ratings bench-reco bench-etl bench-alb bench-budget bench-speed bench-trending evaluate loadtest token clean screenshots

# constraints.txt pins every third-party package (moto and what it runs on included): a clone installs
# exactly what was tested. `make lock` re-resolves it from the pyproject ranges.
$(STAMP): $(PYPROJECTS) requirements-dev.txt constraints.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt $(foreach p,$(PACKAGES),-e $(p)) -r requirements-dev.txt
	@touch $(STAMP)

deps: $(STAMP) system-deps ## install Python packages into .venv, and haproxy (the local ALB) and redis-server if missing

lock: ## re-resolve constraints.txt from the pyproject ranges in a scratch virtualenv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q $(foreach p,$(PACKAGES),-e $(p)) -r requirements-dev.txt
	(echo "# Exact versions of every third-party package; regenerate with make lock."; \
	 .lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ') > constraints.txt
	rm -rf .lock-venv

system-deps:
	@bash tooling/ensure-system-deps.sh

# Checkov (the Terraform scanner) in its own virtualenv: its botocore pin conflicts with aiobotocore's.
# infrastructure/checkov-requirements.txt pins it and everything it runs on. Without PyPI the install
# fails, make goes on and infrastructure/tests/test_checkov.py is skipped, saying why.
CHECKOV_VENV := .venv-checkov
CHECKOV_REQUIREMENTS := infrastructure/checkov-requirements.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): $(CHECKOV_REQUIREMENTS)
	@rm -rf $(CHECKOV_VENV)
	@($(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/pip install -q --upgrade pip \
	  && $(CHECKOV_VENV)/bin/pip install -q -r $(CHECKOV_REQUIREMENTS) && touch $@) \
	  || (rm -rf $(CHECKOV_VENV); echo "checkov could not be installed: infrastructure/tests/test_checkov.py will be skipped")

checkov: $(CHECKOV_STAMP) ## install the pinned checkov into .venv-checkov

lock-checkov: ## re-resolve infrastructure/checkov-requirements.txt for CHECKOV_VERSION (default: the pinned one)
	rm -rf .lock-checkov && $(PYTHON) -m venv .lock-checkov && .lock-checkov/bin/pip install -q --upgrade pip
	.lock-checkov/bin/pip install -q checkov==$${CHECKOV_VERSION:-$$(sed -n 's/^checkov==//p' $(CHECKOV_REQUIREMENTS))}
	(head -2 $(CHECKOV_REQUIREMENTS); .lock-checkov/bin/pip freeze --exclude-editable) > $(CHECKOV_REQUIREMENTS).new
	mv $(CHECKOV_REQUIREMENTS).new $(CHECKOV_REQUIREMENTS) && rm -rf .lock-checkov

test: deps checkov ## run every test (unit, integration on the emulator + Redis, end-to-end through the local ALB)
	$(PY) -m pytest

# ruff over the whole tree ([tool.ruff] in pyproject.toml) and mypy over every bookrec_* package of services/, data-processing/ and
# tooling/ ([tool.mypy]); both run, and the target fails if either finds anything.
MYPY_PACKAGES := $(patsubst %/__init__.py,%,$(wildcard services/*/bookrec_*/__init__.py tooling/bookrec_*/__init__.py data-processing/bookrec_*/__init__.py))

.PHONY: lint
lint: $(STAMP) ## lint and types: ruff over the tree, mypy over the services', common's, the ETL's and tooling's packages
	@status=0; \
	for check in "$(PY) -m ruff check ." "$(PY) -m mypy $(MYPY_PACKAGES)"; do \
	  echo "$$check"; $$check || status=1; \
	done; exit $$status

test-fast: deps ## the everyday lane: unit and in-process tests, no local stack, a few minutes
	$(PY) -m pytest -m "not e2e and not slow"

run: deps ## start the whole local stack in the foreground; Ctrl-C stops it
	$(PY) -m bookrec_local.stack run

up: deps ## start the local stack in the background (pid files and logs in .run/)
	$(PY) -m bookrec_local.stack up

down: ## stop a background local stack
	@$(PY) -m bookrec_local.stack down

status:
	@$(PY) -m bookrec_local.stack status

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .run .pytest_cache .mypy_cache .ruff_cache

# The search benchmarks' synthetic books take more real author names from the ETL's Open Library sample.
SEARCH_AUTHORS := data-processing/tests/data/ol_dump_authors_sample.txt.gz
SEARCH_ARGS ?=
bench-search: deps ## search index build/query benchmark at 50K and 1M books, realistic vocabulary (SEARCH_ARGS="--sizes 10000000": the 10M scale; "--sizes 50000": one small size)
	$(PY) -m bench.search.bench_search --authors-dump $(SEARCH_AUTHORS) $(SEARCH_ARGS)

EVAL_SEARCH_ARGS ?=
.PHONY: eval-search
eval-search: deps ## known-item search quality per query kind (hand-written index vs tantivy) and what each engine costs (EVAL_SEARCH_ARGS="--per-kind 20": fewer queries)
	$(PY) -m bench.search.eval_search $(EVAL_SEARCH_ARGS)

EVALUATE_ARGS ?=
evaluate: deps ## offline recommendation quality on goodbooks-10k ratings (EVALUATE_ARGS="--users 300 --regularisation 25": a quick run)
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.recommendation.evaluate $(EVALUATE_ARGS)

RECO_ARGS ?=
bench-reco: deps ## recommender build and latency benchmark (RECO_SCALE=1: also at 50K books / 5M ratings, ~2 min; RECO_ARGS="--users 200": a quick run)
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.recommendation.bench_recommend $(if $(RECO_SCALE),--scale) $(RECO_ARGS)

FLEET_ARGS ?=
RECO_FLEET_ARGS ?=
.PHONY: bench-fleet
bench-fleet: deps ## fleet-scale reads and starts on the emulator: feed items read per replica-hour, full-table reads per build interval at 1/2/4 replicas, a replica's cold start from a 1M-book artifact (~11 min in all, 1.7 GB RAM; FLEET_ARGS="--cold-books 100000" is quicker), the recommender's start from its artifact and full-table reads (RECO_FLEET_ARGS="--scan-ratings 500 --replicas 1 --intervals 1": quicker), the cost table
	$(PY) -m bench.search.bench_fleet --authors-dump $(SEARCH_AUTHORS) $(FLEET_ARGS)
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.recommendation.bench_fleet $(RECO_FLEET_ARGS)
	$(PY) -m bench.search.fleet_costs

TRENDING_ARGS ?=
bench-trending: deps ## trending: Redis cost per event and per refresh, p50/p99 of GET /trending in-process (TRENDING_ARGS="--events 20000 --requests 300": quick)
	$(PY) -m bench.recommendation.bench_trending $(TRENDING_ARGS)

RATINGS_ARGS ?=
bench-ratings: deps ## rating write throughput, lost races, and the emulator's transaction cost (RATINGS_ARGS="--raters 20 --replicas 1 2 --sizes 1:0": a quick run)
	$(PY) -m bench.ratings.bench_ratings $(RATINGS_ARGS)

ETL_ARGS ?=
bench-etl: deps ## extract and load throughput benchmark (ETL_ARGS="--gigabytes 0.01 --load-items 500" is quick)
	$(PY) -m bench.etl.bench_etl --authors-dump $(SEARCH_AUTHORS) $(ETL_ARGS)

ALB_ARGS ?=
bench-alb: deps ## the local ALB's (HAProxy's) added latency and GET /books/{id} throughput (needs `make up`; ALB_ARGS="--requests 300 --duration 2" is quick)
	@command -v wrk >/dev/null || (test "$$(id -u)" = 0 && apt-get install -y -qq wrk >/dev/null 2>&1) || echo "wrk missing: throughput skipped"
	$(PY) -m bookrec_local.bench_alb $(ALB_ARGS)

BUDGET_ARGS ?=
bench-budget: deps ## CPU us per request by part in search and recommendation; BUDGET_ARGS="--baseline REV" compares with REV
	@command -v wrk >/dev/null || (test "$$(id -u)" = 0 && apt-get install -y -qq wrk >/dev/null 2>&1) || (echo "wrk is needed: apt-get install wrk" && exit 1)
	$(PY) -m loadtest.experiments.request_budget $(BUDGET_ARGS)

# Each step's arguments can be narrowed (the suite runs it at its smallest size: bench/tests/test_speed.py).
CEILING_ARGS ?=
TARGETS_ARGS ?= --duration 30 --warmup 10
RECO_SPEED_ARGS ?= --scale
bench-speed: deps ## every speed figure in one run: framework ceiling direct and through HAProxy, in-memory routes through HAProxy (wrk), CPU budget, recommender at both scales
	@command -v wrk >/dev/null || (test "$$(id -u)" = 0 && apt-get install -y -qq wrk >/dev/null 2>&1) || (echo "wrk is needed: apt-get install wrk" && exit 1)
	$(PY) -m loadtest.experiments.framework_ceiling $(CEILING_ARGS)
	$(PY) -m loadtest.experiments.targets --groups memory --alb-workers 1 $(TARGETS_ARGS)
	$(PY) -m loadtest.experiments.request_budget $(BUDGET_ARGS)
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.recommendation.bench_recommend $(RECO_SPEED_ARGS)

SCENARIO ?= smoke
LOADTEST_ARGS ?=
loadtest: deps ## headless Locust against the local stack (brought up if needed): make loadtest SCENARIO=smoke|normal|stress|spike|step; LOADTEST_ARGS="--duration 60 ..." adds options of loadtest/run.py
	$(PY) -m loadtest.run --scenario $(SCENARIO) $(LOADTEST_ARGS)

SCREENSHOTS_ARGS ?=
screenshots: deps ## desktop and phone screenshots of the page into web/screenshots/ (the running `make up` stack, else a sample one; SCREENSHOTS_ARGS="--views search --sizes phone": one)
	$(PY) -m bookrec_local.screenshots $(SCREENSHOTS_ARGS)

USER ?= alice
token: ## print an access token for USER from the local stack's identity provider (ADMIN=1 for an admin; SUB=1 prints the user's id instead)
	@$(PY) -m bookrec_local.identity $(USER) $(if $(ADMIN),--admin) $(if $(SUB),--sub)
