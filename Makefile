# passman — build, demo, test, bench. Every target works on a fresh machine
# with Go 1.26: tools are pinned in go.mod and run with `go tool`.

GO        ?= go
BIN       := bin/passman
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/passman-dev/passman/cli.version=$(VERSION)
# Test timeout per package; the whole suite runs in a few minutes on 2 cores.
TEST_FLAGS ?= -race -timeout 15m
BENCH_OUT ?= bench.txt

.PHONY: all build demo test lint fuzz bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/passman

## demo: init a store in a temporary directory and run the main job on it.
demo: build
	./scripts/demo.sh $(BIN)

## test: formatting, vet, staticcheck, then every test (race detector on).
test: lint
	$(GO) test $(TEST_FLAGS) ./...

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
	$(GO) test ./keyring -run '^$$' -fuzz FuzzSealedUnmarshal -fuzztime $(FUZZTIME)
	$(GO) test ./keyring -run '^$$' -fuzz FuzzParseKeyFile -fuzztime $(FUZZTIME)
	$(GO) test ./manifest -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./policy/regotool -run '^$$' -fuzz FuzzLintSource -fuzztime $(FUZZTIME)
	$(GO) test ./fpindex -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME)
	$(GO) test ./scanner/managed -run '^$$' -fuzz FuzzFind -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the store, audit log and backend; prints figures.
bench:
	./scripts/bench.sh $(BENCH_OUT)

clean:
	rm -rf bin $(BENCH_OUT)
