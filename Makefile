# orderly: the doors are `make run` and `make test`.
GO          ?= go
BIN         := $(CURDIR)/bin
TOOLS       := $(CURDIR)/bin/tools
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
GOTESTSUM   := $(TOOLS)/gotestsum
GOTESTSUM_VERSION := v1.13.0

.PHONY: bench-scale bench-move bench-etcd bench-etcd-ab testdeps bench-go all build build-test run test lint unit e2e fuzz bench chaos docker compose-up compose-down compose-status clean

all: build

# The daemons and the everyday client; they need none of the test tools'
# modules (plotting), so a fresh clone's first make run downloads little.
build:
	$(GO) build -o $(BIN)/ ./cmd/orderd ./cmd/orderlb ./cmd/orderctl

# ordertest: the load generator and the chaos test.
build-test: build
	$(GO) build -o $(BIN)/ ./cmd/ordertest

# A local 3-node cluster and its balancer in the foreground: balancer on
# 6000 (and the seed protocol on 12347), node client ports 6001-6003, Raft
# ports 7001-7003, data under ./data. Ctrl-C stops it cleanly.
run: build
	BIN=$(BIN) DATA=$(CURDIR)/data ./deploy/local-cluster.sh

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GOTESTSUM):
	GOBIN=$(TOOLS) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags faults ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags faults ./...

# Unit tests (with the race detector) on the release build, then every
# test again, the end-to-end tests that drive the built binaries as
# processes included, with -tags faults, which compiles in the switches
# that break a node on purpose (package faults); release builds have none.
# gotestsum prints a line per test as it finishes (skipped ones with their
# reason in the summary) and the slowest tests at the end.
TEST_JSON ?= $(BIN)/test.json
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/e2e$$')
test: lint testdeps $(GOTESTSUM)
	$(GOTESTSUM) --format testname --jsonfile $(BIN)/test-release.json -- -race -count=1 -timeout 10m $(UNIT_PKGS)
	$(GOTESTSUM) --format testname --jsonfile $(TEST_JSON) -- -race -tags faults -count=1 -timeout 20m ./...
	@echo "slowest tests:"; $(GOTESTSUM) tool slowest --jsonfile $(TEST_JSON) --threshold 10s

# What the tests drive besides Go, from Debian, installed if missing: the
# chaos tests cut Raft traffic with network namespaces and iptables
# (iproute2, iptables); the operator's page is tested in a real headless
# browser (chromium); Prometheus scrapes a cluster and promtool checks
# deploy/monitoring (prometheus); a Python client of the HTTP API uses
# only its standard library (python3), and the README's curl lines run.
testdeps:
	@command -v ip >/dev/null && command -v iptables >/dev/null && command -v chromium >/dev/null && \
	  command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v python3 >/dev/null && command -v curl >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      iproute2 iptables chromium prometheus python3 curl; }

# Fuzz every decoder for a while (not part of `make test`; the checked-in
# seed corpus is).
FUZZTIME ?= 20s
fuzz:
	for p in ./wire ./api ./fsm ./peernet ./backup; do for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
	  $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

# The standard load scenarios against a local cluster and balancer that it
# starts and stops itself; writes bench/results/<date>-<host>.md (+ JSON and
# charts). BENCH_DURATION sets the length of each run.
BENCH_DURATION ?= 10s
bench: build-test
	$(GO) run ./bench/suite --bin $(BIN) --out bench/results --duration $(BENCH_DURATION)

# A long Jepsen-style run: all nemeses, high load in the middle half
# (CHAOS_LOAD=high: all through, normal: none), a
# random seed (printed; replay with CHAOS_SEED=N), report in ./chaos-report.
# Needs root (network namespaces for partition, tmpfs for disk-full); the
# binaries are built with -tags faults for the slow-disk nemesis. Exit
# status non-zero if any check fails.
# A sharded cluster by default (4 nodes, 3 shards of 3 replicas, the ten
# nemeses and move, balance); CHAOS_SHARDS=0 runs one group on 3 nodes.
CHAOS_DURATION ?= 10m
CHAOS_SEED     ?= 0
CHAOS_SHARDS   ?= 3
CHAOS_LOAD     ?= mixed
ifeq ($(CHAOS_SHARDS),0)
CHAOS_CLUSTER = --nodes 3 --nemesis all
else
CHAOS_CLUSTER = --nodes 4 --shards $(CHAOS_SHARDS) --replicas 3 --nemesis all,move,balance
endif
chaos: build-test
	$(GO) build -tags faults -o $(BIN)/faults/ ./cmd/...
	$(BIN)/faults/ordertest chaos --duration $(CHAOS_DURATION) --seed $(CHAOS_SEED) $(CHAOS_CLUSTER) --load $(CHAOS_LOAD) --report $(CURDIR)/chaos-report

# orderly against a 3-member etcd on the same machine, same load shapes,
# one table with the ratio (installs Debian's etcd-server if missing).
# Capacity as machines are added: 3, 6 and 9 nodes with as many shards
# (3 replicas each), every node held to BENCH_SCALE_QUOTA CPUs in a
# cgroup of its own (needs root); bench/results/scale-latest.{json,md,png}.
BENCH_SCALE_QUOTA ?= 0.1
bench-scale: build
	$(GO) run ./bench/scale --bin $(BIN) --out bench/results --quota $(BENCH_SCALE_QUOTA) --duration $(BENCH_DURATION)

# A replica of a shard of a million customers moved under writes at half
# of capacity (bench/move); bench/results/move-latest.{json,md}.
bench-move: build
	$(GO) run ./bench/move --bin $(BIN) --out bench/results --duration $(BENCH_DURATION)

bench-etcd: build-test
	BIN=$(BIN) BENCH_DURATION=$(BENCH_DURATION) ./bench/etcd/run.sh

# make bench-etcd, with orderly built at REV run beside this build in
# each round (alternating order): a change's before and after.
bench-etcd-ab: build-test
	@test -n "$(REV)" || { echo "usage: make bench-etcd-ab REV=<git revision>"; exit 2; }
	rm -rf $(BIN)/ab && git worktree add -f --detach $(BIN)/ab-src $(REV) >/dev/null && \
	  (cd $(BIN)/ab-src && $(GO) build -o $(BIN)/ab/ ./cmd/orderd ./cmd/orderlb ./cmd/orderctl ./cmd/ordertest); \
	  st=$$?; git worktree remove --force $(BIN)/ab-src; test $$st = 0
	AB_BIN=$(BIN)/ab AB_REV=$(REV) BIN=$(BIN) BENCH_DURATION=$(BENCH_DURATION) ./bench/etcd/run.sh

# Go benchmarks of the hot paths: the wire codec and FSM apply.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./wire ./fsm

# The image: static binaries (no cgo) in a FROM scratch image, orderly:dev.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DOCKER_CTX := $(CURDIR)/bin/docker
docker:
	rm -rf $(DOCKER_CTX) && mkdir -p $(DOCKER_CTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -o $(DOCKER_CTX)/ ./cmd/orderd ./cmd/orderlb ./cmd/orderctl
	docker build -q -t orderly:dev -f deploy/Dockerfile $(DOCKER_CTX)

compose-up: docker
	$(COMPOSE) -p orderly -f deploy/compose.yaml up -d

compose-down:
	$(COMPOSE) -p orderly -f deploy/compose.yaml down

compose-status:
	$(COMPOSE) -p orderly -f deploy/compose.yaml ps
	docker exec orderly_lb_1 /orderctl --addr 127.0.0.1:6000 status 2>/dev/null || \
	  docker exec orderly-lb-1 /orderctl --addr 127.0.0.1:6000 status

clean:
	rm -rf $(BIN)
