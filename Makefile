# trainboard: `make run` (the whole pipeline on this machine) and `make test` set up .venv themselves.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
LOCKS := requirements/tensorflow-cpu.txt requirements/runtime.lock requirements/test.lock
# Tools the tests run besides Python (see their rules below).
TEST_TOOLS := /usr/bin/kubectl /usr/bin/chromium

.PHONY: run test lint bench compile image lock clean

run: $(VENV)/.installed
	$(BIN)/trainboard local

test: $(VENV)/.installed lint $(TEST_TOOLS)
	$(BIN)/pytest

# Every benchmark, one table (about 10 minutes on 2 cores); docs/benchmarks.md holds the results.
bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

compile: $(VENV)/.installed
	$(BIN)/trainboard compile -o pipeline.yaml

# The component image, tagged with the package version (the tag the compiled pipeline uses by default).
# Push it where your cluster pulls from: make image IMAGE=REGISTRY/trainboard:$(VERSION); then compile
# with TRAINBOARD_IMAGE set to the printed digest to pin it.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= ghcr.io/trainboard/trainboard:$(VERSION)
image:
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine reachable here" >&2; exit 1; }
	docker build -t $(IMAGE) .
	docker push $(IMAGE)
	docker inspect --format '{{index .RepoDigests 0}}' $(IMAGE)

# The environment: exact pins of everything, TensorFlow's CPU build; the project itself editable.
$(VENV)/.installed: $(LOCKS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet $(addprefix -r ,$(LOCKS))
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# What the manifests and browser tests run besides Python: kubectl (kustomize v5) and Debian's chromium.
# Installed as root with apt when missing (kubectl from the google-cloud-cli apt repository); else skipped.
/usr/bin/kubectl:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Re-resolve the pins from pyproject.toml (needs the package registry).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements/tensorflow-cpu.txt '.[train]'
	.lockvenv/bin/pip freeze --exclude trainboard | grep -viE '^tensorflow([-_]cpu)?==' > requirements/runtime.lock
	.lockvenv/bin/pip install --quiet '.[test]'
	.lockvenv/bin/pip freeze --exclude trainboard | grep -viE '^tensorflow([-_]cpu)?==' \
		| grep -vxFf requirements/runtime.lock > requirements/test.lock
	$(MAKE) requirements/tensorflow-gpu.lock
	rm -rf .lockvenv

# The image's TensorFlow: the CUDA build of the tested version with its CUDA wheels, resolved, not installed.
TF_VERSION := $(shell sed -n 's/^tensorflow-cpu==\([^;[:space:]]*\).*/\1/p' requirements/tensorflow-cpu.txt)
requirements/tensorflow-gpu.lock: requirements/tensorflow-cpu.txt
	.lockvenv/bin/pip install --quiet --dry-run --ignore-installed --report .lockvenv/gpu.json \
		'tensorflow[and-cuda]==$(TF_VERSION)'
	{ sed -n '1,2p' $@; echo 'tensorflow[and-cuda]==$(TF_VERSION)'; .lockvenv/bin/python -c \
		'import json; ms = [i["metadata"] for i in json.load(open(".lockvenv/gpu.json"))["install"]]; \
		print("\n".join(sorted(m["name"].lower() + "==" + m["version"] for m in ms \
		if m["name"].lower().startswith("nvidia"))))'; } > $@.new && mv $@.new $@

clean:
	rm -rf $(VENV) .trainboard trainboard-runs pipeline.yaml
