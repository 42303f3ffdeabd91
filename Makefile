# datajobs-operator — developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATAJOBS := $(VENV)/bin/datajobs
# The install also compiles the masking worker's C helper: an edit of it reinstalls, as one of pyproject.toml.
COMPILED := operator/datajobs/workers/_fastmask.c
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(COMPILED) | cksum | cut -d' ' -f1)
RESULT_SCHEMA := operator/datajobs/core/result_schema.py
GENERATED := crds charts/datajobs-operator/crds $(RESULT_SCHEMA)
PYTEST_ARGS ?=

.PHONY: help venv control-plane prometheus postgres node image dev test test-unit test-integration lint crds verify bench bench-smoke bench-workers soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,workers]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)  ## create .venv and install the project with its dev extras

control-plane: $(STAMP)  ## build (or find) etcd, kube-apiserver, controller-manager, scheduler, kwok, kubelet, kube-proxy, kubectl, helm
	$(DATAJOBS) cluster --ensure-binaries

prometheus: $(STAMP)  ## build (or find) Prometheus and promtool, for the alert and dashboard tests
	$(PY) -c 'from datajobs.localcluster import prometheus; print(prometheus.ensure()["prometheus"].parent)'

image: $(STAMP)  ## build (or find, cached by content) the pause image and the Dockerfile's image: no Docker, no registry
	$(PY) -m datajobs.localcluster.images

dev: $(STAMP) node  ## run the product on a local cluster, on a real node where possible (Ctrl-C stops everything)
	$(DATAJOBS) dev

postgres:  ## install PostgreSQL (Debian package) for the reference workers' tests
	bash scripts/postgres.sh install

node:  ## install the real node's runtime (containerd, runc, CNI plugins, iptables: Debian packages; needs root)
	@if [ "$$(id -u)" = 0 ] && [ "$$(uname -s)" = Linux ]; then bash scripts/node.sh install; \
	  else echo "node: not root on Linux: no real node here, the fake (kwok) nodes remain"; fi

test: $(STAMP) control-plane prometheus postgres node  ## run unit and integration tests against a real local control plane
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: $(STAMP)  ## unit tests only (no cluster)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, mypy, import-linter, hadolint (Dockerfile), helm lint (the chart)
	$(VENV)/bin/ruff check --no-cache operator tests bench
	$(VENV)/bin/ruff format --no-cache --check operator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	@# helm is pinned and cached like the control plane's binaries (built from its Go module if missing)
	helm="$$($(PY) -c 'from datajobs.localcluster.binaries import ensure_binaries; print(ensure_binaries(["helm"])["helm"])')" \
	  && "$$helm" lint --strict charts/datajobs-operator

crds: $(STAMP)  ## regenerate crds/ and the chart's CRDs from the pydantic models
	$(DATAJOBS) crds --write crds --write charts/datajobs-operator/crds --result-schema $(RESULT_SCHEMA)

verify: crds  ## regenerate everything generated and fail on any diff
	@git diff --exit-code -- $(GENERATED) || \
	  (echo "generated files differ from the models: run 'make crds' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- $(GENERATED))" || \
	  (git status --porcelain -- $(GENERATED); echo "untracked generated files" >&2; exit 1)

bench: $(STAMP) control-plane  ## benchmark vs the Job controller (N=1,000 and 5,000; 10,000 for memory); BENCH_ARGS=...
	$(PY) -m bench.run --full $(BENCH_ARGS)

bench-workers: $(STAMP) postgres  ## the reference workers vs reladiff hashdiff and a plain UPDATE; BENCH_ARGS='--rows 1000000 --rows 10000000'
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench.workers_bench $(BENCH_ARGS)

bench-smoke: $(STAMP) control-plane  ## the benchmark with tiny N (< 2 min; CI runs it via tests/integration/test_bench_smoke.py)
	$(PY) -m bench.run --smoke $(BENCH_ARGS)

soak: $(STAMP) control-plane  ## 30 minutes of jobs created, finished and cancelled; RSS, stuck jobs, leaked pods; SOAK_ARGS=...
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:  ## remove the virtualenv and local state
	rm -rf $(VENV) .datajobs
