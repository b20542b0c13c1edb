# stylelab: `make demo` serves the web demo, `make test` runs the whole suite,
# `make transfer` stylises a built-in image, `make stylize` does it in a blink
# with the shipped fast network.
# Both create the environment first if it is missing: a venv outside the clone
# (override with VENV=...), so fresh clones reuse the 5 GB of torch already installed.

VENV ?= $(HOME)/.cache/stylelab/venv
PY := $(VENV)/bin/python
# The venv is refreshed whenever pyproject.toml's dependencies change.
STAMP := $(VENV)/.stylelab-deps-$(shell python3 tools/requirements.py --hash)

.PHONY: venv demo test test-labs lab transfer stylize starter check-starter check reference bench examples fast-model floors clean

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $$(python3 tools/requirements.py)
	@rm -f $(VENV)/.stylelab-deps-* && touch $@

# the web demo on http://127.0.0.1:7860/ (the kit's main command)
demo: venv
	$(PY) -m stylelab demo

test: venv
	$(PY) -m pytest

# the notebooks top to bottom with the solutions, small sizes (tests/labs/test_labs.py does this too)
test-labs: venv
	STYLELAB_IMPL=solutions STYLELAB_QUICK=1 $(PY) -m pytest --nbval-lax labs/

# JupyterLab on the whole kit (labs/ and starter/, where the code goes), opening lab 1;
# STYLELAB_IMPL=solutions make lab shows the reference
lab: venv
	$(PY) -m jupyter lab --ServerApp.root_dir=. labs/01_features_and_content.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

transfer: venv
	$(PY) -m stylelab transfer --content astronaut --style swirls --num-iters 100 --out out/astronaut_swirls.png

stylize: venv
	$(PY) -m stylelab stylize --content astronaut --mix swirls=0.6 --mix mosaic=0.4 --out out/astronaut_fast.png

starter:
	python3 -m grader.instructor.starter

check-starter:
	python3 -m grader.instructor.starter --check

check: venv
	$(PY) -m grader check

reference: venv
	$(PY) -m grader.instructor.make_reference

examples: venv
	$(PY) -m stylelab examples out/examples

# the shipped fast network from nothing (stylelab/models/README.md): the engine paints shards'
# corpus, then the network trains; both resume where they stopped. About 80 minutes on 2 cores with
# bfloat16 (the speed probe picks it where the CPU has it; the recorded run named it).
fast-model: venv
	$(PY) -m stylelab distil --style shards --count 20 --out out/corpus
	$(PY) -m stylelab train-fast --style swirls --style mosaic --style shards --recolour --content-weight swirls=180 mosaic=480 shards=120 --distil out/corpus --pixel-weight 20000 --shade-weight 1e6 --steps 14000 --out out/train/fast3_base.pt --resume
	$(PY) -m stylelab train-fast --style swirls --style mosaic --style shards --recolour --content-weight swirls=540 mosaic=480 shards=120 --distil out/corpus --pixel-weight 20000 --shade-weight 1e6 --init out/train/fast3_base.pt --only swirls --steps 600 --out stylelab/models/fast3.pt --resume

bench: venv
	$(PY) -m bench.bench_grader
	$(PY) -m bench.bench_grading
	$(PY) -m bench.bench_transfer
	$(PY) -m bench.bench_quality
	$(PY) -m bench.bench_fast

# every dependency at its declared lower bound, in a venv of its own, then the suite
FLOORS_VENV ?= $(HOME)/.cache/stylelab/floors
floors:
	python3 -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet $$(python3 tools/requirements.py --floors)
	$(FLOORS_VENV)/bin/python -m pytest

clean:
	rm -rf out .pytest_cache
