# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so nothing pulls the multi-GB CUDA builds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Benchmark peer, installed --no-deps: it declares torchvision (no CPU build here) and an old
# requests pin, but imports neither.
TORCHATTACKS := torchattacks==3.5.1
EXTRAS := torch,onnx,gateway,dev
STAMP  := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test test-postgres lint typecheck pytest venv bench bench-scan bench-sign bench-audit bench-gateway fuzz clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install --quiet --no-deps $(TORCHATTACKS)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warden demo --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks/*.py)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks/*.py)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The store and registry tests against a throwaway PostgreSQL server on 127.0.0.1
# (installs Debian's postgresql package when missing and running as root).
test-postgres: $(STAMP)
	bash scripts/test-postgres.sh

# Side-by-side speed and strength against ART and torchattacks (about 7 min on 2 cores).
bench: $(STAMP)
	$(BIN)/python benchmarks/evasion.py

# Scanner vs modelscan and picklescan: corpus detection, throughput, 256 MB / 1 GB checkpoints.
bench-scan: $(STAMP)
	$(BIN)/python benchmarks/scan.py

# Signing vs model_signing on ~2 GB of files, and hashing vs a single-thread sha256 baseline.
bench-sign: $(STAMP)
	$(BIN)/python benchmarks/sign.py

# Audit log: durable appends/s (1/8/64 writers, threads and processes; SQLite, and PostgreSQL when
# WARDEN_TEST_POSTGRES_URL is set) and verification records/s.
bench-audit: $(STAMP)
	$(BIN)/python benchmarks/audit.py

# Gateway vs a bare FastAPI + uvicorn endpoint: throughput and p50/p99 latency, TLS off and on.
bench-gateway: $(STAMP)
	$(BIN)/python benchmarks/gateway.py

# Coverage-guided fuzzing of the pickle and archive parsers (atheris; FUZZ_SECONDS each).
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet atheris==3.0.0
	$(BIN)/python benchmarks/fuzz_scan.py --target pickle --seconds $(FUZZ_SECONDS)
	$(BIN)/python benchmarks/fuzz_scan.py --target archive --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
