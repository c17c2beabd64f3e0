# trainboard: `make run` (the whole pipeline on this machine) and `make test` set up .venv themselves.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
LOCKS := requirements/tensorflow-cpu.txt requirements/runtime.lock requirements/test.lock
# Tools the tests run besides Python, installed when missing (see their rules below). BROWSER=no: no
# Chromium, and the tests marked `browser` are left out (named at the end of pytest's output).
BROWSER ?= yes
TEST_TOOLS := $(if $(shell command -v kubectl 2>/dev/null),,/usr/bin/kubectl)
ifeq ($(BROWSER),no)
PYTEST_ARGS := -m "not browser"
else
TEST_TOOLS += /usr/bin/chromium
endif

.PHONY: run test lint bench compile image lock clean

run: $(VENV)/.installed
	$(BIN)/trainboard local

test: $(VENV)/.installed lint $(TEST_TOOLS)
	$(if $(PYTEST_ARGS),@echo "make test BROWSER=no: no chromium; the browser tests left out (named at the end)")
	$(BIN)/pytest $(PYTEST_ARGS)

# Every benchmark, one table (14 minutes on 2 cores on 2026-12-01); docs/benchmarks.md holds the results.
bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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

# $(call apt_install,PACKAGE,WHY,OTHERWISE): a line saying what and why first, then apt-get as root without
# the package's recommends (chromium's pull in ~90 more packages, udev and avahi among them, none needed
# headless); where apt cannot, a line saying what to do instead.
define apt_install
	@echo "make test needs $(1) for $(2): apt-get install --no-install-recommends $(1)"
	@[ "$$(id -u)" = 0 ] || { echo "make test: $(1) is missing and apt-get needs root: install it," \
		"or $(strip $(3))" >&2; exit 1; }
	@apt-get update -qq
	@apt-cache show $(1) >/dev/null 2>&1 || \
		{ echo "make test: no apt source here has $(1): $(strip $(3))" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1)
endef

# kubectl: Debian has none; apt finds it where a Kubernetes or Google Cloud apt repository is set up.
/usr/bin/kubectl:
	$(call apt_install,kubectl,the manifest tests (kubectl kustomize: kustomize v5),\
		put kubectl 1.27 or newer on PATH: https://kubernetes.io/docs/tasks/tools/)
# Debian's chromium (25 packages without recommends on bookworm), for the tests marked `browser`.
/usr/bin/chromium:
	$(call apt_install,chromium,the 2 tests marked browser (TensorBoard in headless chromium),\
		run without them: make test BROWSER=no)

# Re-resolve the pins from pyproject.toml (needs the package registry). Everything is resolved in one pass,
# then the image's share (train, serve) is picked out of it under those pins: the test tools can never move
# a runtime pin (mlflow's server pins its client, for one).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements/tensorflow-cpu.txt '.[train,serve,test]'
	.lockvenv/bin/pip freeze --exclude trainboard | grep -viE '^tensorflow([-_]cpu)?==' > .lockvenv/all.txt
	.lockvenv/bin/pip install --quiet --dry-run --ignore-installed --report .lockvenv/runtime.json \
		-c .lockvenv/all.txt -r requirements/tensorflow-cpu.txt '.[train,serve]'
	.lockvenv/bin/python -c 'import json; ms = [i["metadata"] for i in json.load(open(".lockvenv/runtime.json"))["install"]]; \
		print("\n".join(sorted((m["name"] + "==" + m["version"] for m in ms \
		if m["name"].lower() not in ("trainboard", "tensorflow", "tensorflow-cpu")), key=str.lower)))' \
		> requirements/runtime.lock
	grep -vixFf requirements/runtime.lock .lockvenv/all.txt > requirements/test.lock
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
