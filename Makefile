# VQ-Diffusion in Swift. Numeric code always builds in release mode.
SHELL := /bin/bash
SWIFT ?= swift
RELEASE := -c release
PROFILE ?= paper
DB ?= results/results.sqlite
JOBS ?= 2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# System packages the suite needs (Debian names). Open MPI is loaded only by runs under mpirun
# (docs/distributed.md); the tests run two ranks.
DEBS := libopenblas-dev libdnnl-dev libsqlite3-dev libpng-dev zlib1g-dev gnuplot-nox sqlite3 dataset-fashion-mnist \
        libopenmpi-dev openmpi-bin
# Open MPI refuses to start as root unless told to; CI and containers run as root.
MPI_AS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

.PHONY: deps system-packages minilm build test bench bench-scaling query trim-results clean studies figures \
        study-quality study-speed study-mask study-reparam study-inpaint

## deps: system packages, then the text encoder weights (each step does nothing when already done)
deps: system-packages
	@$(MAKE) --no-print-directory minilm

## system-packages: install whatever is missing of the system packages (does nothing when all are present)
system-packages:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

## minilm: fetch and verify the all-MiniLM-L6-v2 weights and vocabulary into cache/minilm/
minilm:
	@scripts/fetch-minilm.sh

## build: release build of the library, the vqd tool and the benchmarks
build: deps
	$(SWIFT) build $(RELEASE)

## test: the test suite, in release mode with testing enabled. Serial: OpenBLAS's thread count is
## process-wide and its results depend on it, so tests that check bitwise reproducibility (resume
## equals uninterrupted) must not share the process with tests that change it. DistributedTrainingTests
## run vqd as two MPI ranks on this machine (mpirun --oversubscribe -np 2, over the loopback interface).
test: deps
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing --no-parallel

## bench: engine throughput against this machine's sgemm peak
bench: deps
	$(SWIFT) run $(RELEASE) vqd-bench

## bench-scaling: the small preset's training steps/s as 1 process × 1 thread, 1 process × 2 threads and
## 2 MPI ranks × 1 thread, and the gradients' allreduce time per step (docs/distributed.md)
bench-scaling: deps
	env $(MPI_AS_ROOT) $(SWIFT) run $(RELEASE) vqd-bench --scaling $(ARGS)

## study-quality, study-speed, study-mask, study-reparam, study-inpaint: run one study
## (PROFILE=quick|paper, default paper; study-mask also PROFILE=preview; ARGS="--key value …"
## overrides its configuration), then redraw its figure from the database. Missing models are
## trained JOBS at a time first (default 2, one thread each; ARGS="--mpi-ranks N" trains each as N
## MPI ranks, docs/distributed.md). Mask, reparam and inpaint build on the quality study's tuned
## recipes: run study-quality first.
study-quality study-speed study-mask study-reparam study-inpaint: build
	env $(MPI_AS_ROOT) .build/release/$@ --profile $(PROFILE) --db $(DB) --jobs $(JOBS) $(ARGS)
	@scripts/figures.sh -d $(DB) -p $(PROFILE) $(@:study-%=%)

## studies: all five studies (the prerequisite models are trained once and shared)
studies: study-speed study-quality study-mask study-reparam study-inpaint

## figures: redraw every figure from the results database alone
figures:
	@scripts/figures.sh -d $(DB) -p $(PROFILE)

## query: run SQL against the results database, e.g. make query SQL="select * from runs"
query:
	@sqlite3 -header -column $(DB) "$(SQL)"

## trim-results: shrink the results database before committing it (docs/contributing.md): keep the
## studies' runs, their models' training runs and the runs the docs cite; thin training metrics
## to every 25th step
trim-results:
	@scripts/trim-results.sh $(DB)

clean:
	rm -rf .build
