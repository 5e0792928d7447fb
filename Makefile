# Two entry points: `make demo` and `make test`. Both create/refresh .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= /tmp/mmfeat-demo
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: venv demo test lint bench clean wheel container

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned: a CPU wheel of torch==2.13.0 is what these machines have; unpinned torch pulls GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev,encoders,text-encoder,audio-encoder,samples,video,report,dask,aws]"
	$(BIN)/python -c "import mmfeat.runners.cli, torch, apache_beam" 
	touch $@

venv: $(VENV)/.installed

demo: venv
	rm -rf $(DEMO)
	$(BIN)/mmfeat demo $(DEMO)

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python benchmarks/librispeech.py
	$(BIN)/python benchmarks/encoders.py
	$(BIN)/python benchmarks/coco.py

# The wheel remote workers install (--extra_package), and the worker image (--sdk_container_image).
wheel: venv
	rm -rf dist
	$(BIN)/python -m pip wheel --no-deps --disable-pip-version-check -q -w dist .
	@ls dist/*.whl

IMAGE ?= $(shell $(BIN)/python -c "from mmfeat.runners.packaging import default_image; print(default_image())" 2>/dev/null)
container: wheel
	docker build -f container/Dockerfile -t $(IMAGE) \
	  --build-arg PYTHON_VERSION=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
	  --build-arg BEAM_VERSION=$$($(BIN)/python -c 'import apache_beam; print(apache_beam.__version__)') \
	  $(if $(TORCH_INDEX_URL),--build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL)) .
	@echo "built $(IMAGE): push it to a registry your workers can pull from, then pass --sdk_container_image=REGISTRY/$(IMAGE)"

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
