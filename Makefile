# Agent sidecar — build, test and demo targets. See README.md.
GO      ?= go
BIN     := bin/sidecar
PKG     := github.com/agent-sidecar/sidecar
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(PKG)/sidecar.Version=$(VERSION)

.PHONY: all build test test-race lint consul sdk-deps demo bench fuzz clean help

all: build

help:
	@echo "make build      build bin/sidecar and bin/fakellm (the fake model server)"
	@echo "make test       lint, then every test with the race detector, against a real Consul"
	@echo "make test-race  the tests with the race detector (no lint)"
	@echo "make lint       gofmt and go vet"
	@echo "make consul     build Consul v1.14.11 once and cache it (prints its path)"
	@echo "make sdk-deps   install the Node packages the end-to-end tests drive: the OpenAI and Anthropic SDKs, playwright-core (npm ci)"
	@echo "make bench      the call and model-gateway benchmarks (direct vs httputil.ReverseProxy vs the sidecar) and the micro-benchmarks"
	@echo "make demo       run the example agent under the sidecar and watch it recover (KEEP=1 keeps it running)"
	@echo "make fuzz       run every fuzz target for FUZZTIME each (default 30s)"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sidecar
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/fakellm ./examples/fakellm/cmd/fakellm

consul:
	@scripts/consul.sh

# The tests start their own Consul agents from the cached binary; under
# CI=true a missing binary fails the run instead of skipping.
test: lint consul sdk-deps
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) test -race -count=1 -timeout 20m ./...

test-race: consul sdk-deps
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) test -race -count=1 -timeout 20m ./...

# The official SDKs at the versions pinned in package-lock.json, for
# TestModelGatewayWithOfficialSDKs (cmd/sidecar/sdk_test.go); needs Node.js 20+.
sdk-deps:
	npm ci --prefix cmd/sidecar/testdata/sdk --no-audit --no-fund
	npm ci --prefix cmd/sidecar/testdata/ui --no-audit --no-fund

lint:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build consul
	CONSUL_BIN="$$(scripts/consul.sh)" KEEP="$(KEEP)" scripts/demo.sh

# One run, interleaved rounds: direct calls, a plain httputil.ReverseProxy,
# and the sidecar's /call/ and /llm/; then breaker admission, the model
# request rewrite and instance lookup.
bench:
	$(GO) test -run '^$$' -bench 'CallPath|ModelPath' -benchtime 5000x -count 3 ./sidecar/
	$(GO) test -run '^$$' -bench . -benchmem ./sidecar/breaker/ ./sidecar/gateway/ ./policies/
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) test -run '^$$' -bench 'Instances' -benchmem ./discovery/

# Each fuzz target in turn: the configuration loader, heartbeat bodies, the
# model request rewrite, SSE splitting and /call/ paths. `make test` runs
# their seed corpora; this explores beyond them.
FUZZTIME ?= 30s
FUZZ_TARGETS := ./policies/:FuzzLoad ./sidecar/:FuzzParseHeartbeat ./sidecar/:FuzzCallPath \
	./sidecar/gateway/:FuzzParseAndRewrite ./sidecar/gateway/:FuzzEventReader
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	done

clean:
	rm -rf bin
