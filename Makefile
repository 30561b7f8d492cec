# Deep Vision Lab. `make run` and `make test` work on a fresh machine, with no network but
# the package registries (and none at all once .venv exists).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 7860

.PHONY: run test bench bench-gpu bench-scale soak train evaluate browser clean

$(VENV)/.app-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.app-installed requirements-dev.txt requirements-ray.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.app-installed          ## set up, then serve on http://127.0.0.1:$(PORT)
	$(PY) app.py --port $(PORT)

test: $(VENV)/.dev-installed browser  ## set up, then the whole suite (under 20 min on 2 cores)
	$(PY) -m pytest

bench: $(VENV)/.dev-installed         ## latency/memory tables; see bench/README.md
	$(PY) -m bench

bench-gpu: $(VENV)/.dev-installed     ## every pretrained model at its real size on a GPU, app vs library; see bench/gpu.py
	$(PY) -m bench gpu

bench-scale: $(VENV)/.dev-installed   ## replicas and batching on Ray Serve (the ray backend); see bench/scale.py
	$(PY) -m bench.scale

soak: $(VENV)/.dev-installed          ## 2,000 mixed requests from 32 clients over every endpoint; see bench/soak.py
	$(PY) -m bench.soak

train: $(VENV)/.app-installed         ## retrain the local U-Net into weights/ (~25 min on 2 cores)
	$(PY) -m models train unet-shapes

evaluate: $(VENV)/.app-installed      ## score the shipped U-Net on 500 unseen scenes
	$(PY) -m models evaluate unet-shapes --seed 2000000 --count 500

# The browser tests drive Debian's Chromium; never a browser a test tool downloads itself.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
