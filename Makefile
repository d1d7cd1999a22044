# passman — build, demo, test, bench. Every target works on a fresh machine
# with Go 1.26: tools are pinned in go.mod and run with `go tool`.

GO        ?= go
BIN       := bin/passman
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/passman-dev/passman/internal/clibase.version=$(VERSION)
# Test timeout per package; the whole suite runs in a few minutes on 2 cores.
TEST_FLAGS ?= -race -timeout 15m
BENCH_OUT ?= bench.txt

# The scanner runs gitleaks' rules on RE2 (gitleaks' own gore2regex build
# option), several times faster than Go's regexp on those rules, with the
# same findings. With the RE2 library installed (Debian: libre2-dev; `make
# deps` installs it when it can) it is linked through cgo; without it the
# WebAssembly build of RE2 runs on wazero: pure Go, but ~200 ms of start-up
# per command. RE2_TAGS= builds with Go's regexp.
RE2_TAGS ?= $(shell pkg-config --exists re2 2>/dev/null && echo gore2regex,re2_cgo || echo gore2regex)
export GOFLAGS := $(if $(RE2_TAGS),-tags=$(RE2_TAGS))

# gitleaks itself, as its users install it, for the parity test and the
# scan benchmark.
TOOLS            := $(CURDIR)/.tools
GITLEAKS         := $(TOOLS)/gitleaks
GITLEAKS_VERSION := v8.30.1
export PASSMAN_GITLEAKS := $(GITLEAKS)
# nektos/act, for the GitHub Action's end-to-end suite (action/act_test.go);
# under make that suite fails rather than skips without it.
ACT := $(TOOLS)/act
export PASSMAN_ACT := $(ACT)
export PASSMAN_REQUIRE_ACT := 1
# The rotation tests run a real PostgreSQL server (scripts/deps.sh installs
# it); under make they fail rather than skip without one.
export PASSMAN_REQUIRE_POSTGRES := 1
# The fsync durability tests trace system calls with strace (scripts/deps.sh
# installs it); under make they fail rather than skip without it.
export PASSMAN_REQUIRE_STRACE := 1
# The Terraform provider's acceptance tests drive the terraform binary
# (1.11 or later, on PATH); under make they fail rather than skip without
# one.
export PASSMAN_REQUIRE_TERRAFORM := 1
PROVIDER_BIN := bin/terraform-provider-passman

# The cluster tests run a real etcd (internal/etcdtest), built from the
# wrapper module internal/etcdtest/etcdserver into .tools/etcd; under make
# they fail rather than skip when it cannot be built.
ETCD := $(TOOLS)/etcd
export PASSMAN_REQUIRE_ETCD := 1

.PHONY: all build demo test go-test lint fuzz bench bench-scan bench-server deps clean provider testacc tfdocs bench-terraform bench-cluster demo-cluster etcd cross-build bench-action release-check

all: build

# passman-regal is `passman policy lint`'s linter, run from beside passman:
# linking Regal into passman would cost every command ~50 ms of start-up.
# passman is a small front (scans, --version) that hands every other
# command to passman-full beside it, for the same reason.
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/passman
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(BIN))passman-full ./cmd/passman-full
	$(GO) build -trimpath -o $(dir $(BIN))passman-regal ./cmd/passman-regal

## provider: the Terraform provider, for dev_overrides (see README).
provider:
	$(GO) build -trimpath -ldflags '-X main.version=$(VERSION)' -o $(PROVIDER_BIN) ./cmd/terraform-provider-passman

## demo: init a store in a temporary directory and run the main job on it,
## then a short Terraform walkthrough when terraform is installed.
demo: build provider
	./scripts/demo.sh $(BIN) $(PROVIDER_BIN)

## testacc: the Terraform provider's acceptance tests alone.
testacc:
	$(GO) test $(TEST_FLAGS) ./testacc/ ./provider/

## tfdocs: regenerate docs/terraform from the provider's schema and
## examples/ (TestDocsUpToDate fails when they are stale).
tfdocs:
	./scripts/tfdocs.sh

## test: formatting, vet, staticcheck, then every test (race detector on).
# deps runs first and the rest in a new make, so that RE2_TAGS sees what
# deps installed.
test: deps $(GITLEAKS) $(ETCD) $(ACT)
	@$(MAKE) --no-print-directory lint cross-build go-test

go-test:
	@echo "go test (tags: $(RE2_TAGS))"
	$(GO) test $(TEST_FLAGS) ./...

## deps: system packages the build prefers (the RE2 library), when this
## user can install them; the build works without.
deps:
	@./scripts/deps.sh

$(ACT):
	./scripts/install-act.sh $(TOOLS)

## cross-build: the passman binary the GitHub Action runs on macOS and
## Windows runners compiles there (pure Go, as released).
cross-build:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman-full
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman-full
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman-regal
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 GOFLAGS=-tags=gore2regex $(GO) build -o /dev/null ./cmd/passman-regal

## release-check: every release target (linux, darwin, windows x amd64,
## arm64) compiles; scripts/release.sh builds, pins and verifies them.
release-check:
	./scripts/release.sh check

$(GITLEAKS):
	GOFLAGS= GOBIN=$(TOOLS) $(GO) install github.com/zricethezav/gitleaks/v8@$(GITLEAKS_VERSION)

# etcd's server module cannot be go-installed (replace directives in its
# go.mod); the wrapper module builds the same server from its library.
etcd: $(ETCD)
$(ETCD): internal/etcdtest/etcdserver/go.mod internal/etcdtest/etcdserver/main.go
	cd internal/etcdtest/etcdserver && GOFLAGS= GOWORK=off $(GO) build -trimpath -o $(ETCD) .

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./secret -run '^$$' -fuzz FuzzValidatePath -fuzztime $(FUZZTIME)
	$(GO) test ./secret -run '^$$' -fuzz FuzzParseDuration -fuzztime $(FUZZTIME)
	$(GO) test ./audit -run '^$$' -fuzz FuzzVerifyReader -fuzztime $(FUZZTIME)
	$(GO) test ./audit -run '^$$' -fuzz FuzzAppendVerify -fuzztime $(FUZZTIME)
	$(GO) test ./audit -run '^$$' -fuzz FuzzParseCheckpoint -fuzztime $(FUZZTIME)
	$(GO) test ./keyring -run '^$$' -fuzz FuzzSealedUnmarshal -fuzztime $(FUZZTIME)
	$(GO) test ./keyring -run '^$$' -fuzz FuzzParseKeyFile -fuzztime $(FUZZTIME)
	$(GO) test ./manifest -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./policy/regotool/regal -run '^$$' -fuzz FuzzLintSource -fuzztime $(FUZZTIME)
	$(GO) test ./fpindex -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME)
	$(GO) test ./scanner/managed -run '^$$' -fuzz FuzzFind -fuzztime $(FUZZTIME)
	$(GO) test ./scanner -run '^$$' -fuzz FuzzLogParser -fuzztime $(FUZZTIME)
	$(GO) test ./scanner -run '^$$' -fuzz FuzzLoadBaseline -fuzztime $(FUZZTIME)
	$(GO) test ./scanner -run '^$$' -fuzz FuzzLoadIgnore -fuzztime $(FUZZTIME)
	$(GO) test ./internal/strictjson -run '^$$' -fuzz FuzzCheck -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the store, audit log and backend; prints figures.
bench:
	./scripts/bench.sh $(BENCH_OUT)

## bench-scan: passman scan git against gitleaks git on a generated
## benchmark repository, side by side; prints time, MB/s and memory.
bench-scan: build $(GITLEAKS)
	./scripts/bench-scan.sh $(BIN) $(GITLEAKS)

## bench-action: the GitHub Action's scan of a 50-commit pull request of
## the benchmark repository, through its entry point (passman action run),
## against gitleaks git --log-opts=BASE..HEAD; prints the ratio and checks
## that passman's findings include gitleaks'.
bench-action: build $(GITLEAKS)
	./scripts/bench-action.sh $(BIN) $(GITLEAKS)

## bench-server: a real TLS server on loopback with a durable, audited
## store; 16 clients read, then write, for 10 s each; prints throughput and
## p50/p95/p99 latency, with audit entries fsync'd (passman's default) and
## then written without fsync (what a Vault/OpenBao file audit device does).
bench-server: build
	AUDIT_SYNC=fsync ./scripts/bench-server.sh $(BIN)
	AUDIT_SYNC=write ./scripts/bench-server.sh $(BIN)

## bench-terraform: terraform apply and a no-change plan of 1,000
## passman_secret against 1,000 terraform_data (the floor) on a local
## server; prints wall and CPU time and the ratios.
bench-terraform: build provider
	./scripts/bench-terraform.sh $(BIN) $(dir $(PROVIDER_BIN))
## bench-cluster: 16 clients over two servers on a 3-member etcd cluster,
## then over the single-node bbolt server, in one run; prints reads/s,
## writes/s, p99 and the cluster's ratios (docs/cluster.md).
bench-cluster: build $(ETCD)
	./scripts/bench-cluster.sh $(BIN) $(ETCD)

## demo-cluster: 3 etcd members and 2 passman servers on loopback: a write
## on one, a read on the other, faults survived, and the rotation schedule
## moving to the other server when its leader is killed.
demo-cluster: build $(ETCD)
	./scripts/demo-cluster.sh $(BIN) $(ETCD)

clean:
	rm -rf bin $(BENCH_OUT) $(TOOLS)
