# Agent sidecar — build, test and demo targets. See README.md.
# Two Go modules: the product (this directory) and tools/ (the bench
# harness, the chaos suite, the demo and fleet runners, with their own
# go.mod so that vegeta stays out of the product's). Every Go target that
# covers the code runs in both.
GO      ?= go
BIN     := bin/sidecar
PKG     := github.com/agent-sidecar/sidecar
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(PKG)/internal/version.Version=$(VERSION)

.PHONY: all build test test-race lint consul jaeger sdk-deps demo bench fuzz chaos fleet bench-test clean help

all: build

help:
	@echo "make build      build bin/sidecar, bin/fakellm (the fake model server), bin/agent-go (the Go example agent) and bin/demo"
	@echo "make test       lint, then every test of both modules (the product and tools/), the end-to-end ones (tag e2e) included, with the race detector, against a real Consul"
	@echo "make test-race  the tests with the race detector (no lint)"
	@echo "make lint       gofmt and go vet (the product module and tools/)"
	@echo "make consul     build Consul v1.14.11 once and cache it (prints its path)"
	@echo "make jaeger     build Jaeger v1.76.0 once and cache it (prints its path); make test's tracing tests and make demo use it"
	@echo "make sdk-deps   install the Node packages: the Node example agent's, and those the end-to-end tests drive: the OpenAI and Anthropic SDKs, the Vercel AI SDK (ai, @ai-sdk/openai, @ai-sdk/anthropic), playwright-core (npm ci)"
	@echo "make bench      the sidecar beside direct calls, a plain Go reverse proxy, nginx and Portkey (latency, throughput, CPU, RSS, failover), and beside itself tracing every request, then the micro-benchmarks (tracing off and on)"
	@echo "make demo       run a fleet of five agents with their sidecars, break things and watch the tasks still handled (KEEP=1 keeps it running)"
	@echo "make fuzz       run every fuzz target for FUZZTIME each (default 30s)"
	@echo "make chaos      the fault-injection suite in its long form; prints the table (make test runs the short form)"
	@echo "make fleet      N agents (default 50) with sidecars on one Consul, some hung or killed: detection times, lost tasks, Consul load"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sidecar
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/fakellm ./test/fakellm/cmd/fakellm
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/agent-go ./examples/go/agent
	CGO_ENABLED=0 $(GO) build -C tools -trimpath -o $(CURDIR)/bin/demo ./demo
	CGO_ENABLED=0 $(GO) build -C tools -trimpath -o $(CURDIR)/bin/fleet ./fleet

consul:
	@scripts/consul.sh

# Jaeger (v2, one binary: OTLP receivers, in-memory storage, query API) for
# the tests that read back the sidecar's traces (internal/jaegertest) and
# for make demo, which uses it when it is built and never builds it. The
# first build takes about 15 minutes on two cores (16 measured, with the
# modules already downloaded); scripts/jaeger.sh.
jaeger:
	@scripts/jaeger.sh

# The tests start their own Consul agents and Jaeger instances from the
# cached binaries; under CI=true a missing binary fails the run instead of
# skipping. The suites that build and run the sidecar binary, agents, Node,
# Chromium, the demo, the chaos suite and the fleet runner carry the e2e
# build tag: a plain `go test ./...` leaves them out, make test runs them.
#
# The two modules' tests run at the same time (the tools' chaos suite alone
# takes about as long as the product's tests and lint together); the
# tools' output goes to test-artifacts/test-tools.log and is printed after
# the product's. Either failing fails the target.
test: lint test-race

TOOLS_LOG := test-artifacts/test-tools.log
test-race: consul jaeger sdk-deps
	@mkdir -p $(dir $(TOOLS_LOG))
	@consul="$$(scripts/consul.sh)"; jaeger="$$(scripts/jaeger.sh)"; \
	echo "go test -C tools -tags e2e -race ./... (output in $(TOOLS_LOG), printed below when done)"; \
	CONSUL_BIN="$$consul" JAEGER_BIN="$$jaeger" $(GO) test -C tools -tags e2e -race -count=1 -timeout 20m ./... >$(TOOLS_LOG) 2>&1 & tools=$$!; \
	echo "go test -tags e2e -race ./..."; \
	CONSUL_BIN="$$consul" JAEGER_BIN="$$jaeger" $(GO) test -tags e2e -race -count=1 -timeout 20m ./...; product=$$?; \
	wait $$tools; toolsrc=$$?; \
	echo "--- tools/ module ($(TOOLS_LOG)):"; cat $(TOOLS_LOG); \
	[ $$product -eq 0 ] || echo "FAIL: the product module's tests"; \
	[ $$toolsrc -eq 0 ] || echo "FAIL: the tools/ module's tests"; \
	[ $$product -eq 0 ] && [ $$toolsrc -eq 0 ]

# The Node packages at the versions pinned in each package-lock.json: the
# Node example agent's (openai), the official SDKs and the Vercel AI SDK
# for TestModelGatewayWithOfficialSDKs, TestCrossProviderWithOfficialSDKs
# and TestUsageWithOfficialSDKs, and playwright-core for the Consul UI test; needs Node.js 20+.
NODE_DIRS := examples/node clients/node cmd/sidecar/testdata/sdk cmd/sidecar/testdata/ui
sdk-deps: $(addsuffix /node_modules/.package-lock.json,$(NODE_DIRS))
%/node_modules/.package-lock.json: %/package-lock.json
	npm ci --prefix $* --no-audit --no-fund

lint:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(GO) vet -C tools -tags e2e ./...

demo: build consul examples/node/node_modules/.package-lock.json
	CONSUL_BIN="$$(scripts/consul.sh)" KEEP="$(KEEP)" bin/demo

# make bench: the harness (tools/bench) starts an upstream registered
# in a Consul dev agent, a plain Go reverse proxy, nginx (installed from
# Debian's packages when missing), the sidecar, fake models and Portkey's
# gateway as separate processes, and a second sidecar tracing every
# request to an OTLP sink in the harness, and
# measures them with vegeta in interleaved rounds; then the in-process
# benchmarks of the call path and the hot functions, tracing off and on
# (BenchmarkCallPath/CallPathTraced, ModelPath/ModelPathTraced, and the
# gateway's Serve/tracing-off and tracing-on).
bench: build
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) run -C tools ./bench -root $(CURDIR) -json $(CURDIR)/test-artifacts/bench.json
	$(GO) test -run '^$$' -bench 'CallPath|CallPathTraced|ModelPath|ModelPathTraced' -benchtime 5000x -count 3 ./sidecar/ ./sidecar/proxy/
	$(GO) test -run '^$$' -bench 'BodySize' -benchtime 200x ./sidecar/
	$(GO) test -run '^$$' -bench . -benchmem ./sidecar/breaker/ ./sidecar/gateway/ ./sidecar/gateway/translate/ ./policies/
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) test -run '^$$' -bench 'Instances' -benchmem ./discovery/

# The harness's own test (a -quick run), alone: it saturates both CPUs.
bench-test: build
	CONSUL_BIN="$$(scripts/consul.sh)" BENCH_TEST=1 $(GO) test -C tools -count=1 ./bench/

# Each fuzz target in turn: the configuration loader, heartbeat bodies, the
# model request rewrite, SSE splitting, the usage read from model answers,
# /call/ paths, the JSON guard (nesting depth, duplicate keys) against
# encoding/json, the fake model's request checks and answers, the
# translations between OpenAI's and Anthropic's formats (requests, answers,
# errors, both stream converters, the Responses API), and the call path's
# HTTP/1.1 client (sidecar/h1) against net/http's on a server that answers
# with arbitrary bytes. `make test` runs their seed corpora; this explores
# beyond them. The h1 target talks to a real server per input (a few runs a
# second), so it runs for FUZZTIME_NET instead.
FUZZTIME ?= 30s
FUZZTIME_NET ?= 30s
FUZZ_TARGETS := ./policies/:FuzzLoad ./sidecar/health/:FuzzParseHeartbeat ./sidecar/proxy/:FuzzCallPath \
	./sidecar/gateway/:FuzzParseAndRewrite ./sidecar/gateway/:FuzzEventReader ./sidecar/gateway/:FuzzUsage \
	./internal/jsonguard/:FuzzScan \
	./internal/retryafter/:FuzzUntil ./test/fakellm/:FuzzRequests ./sidecar/h1/:FuzzAgainstNetHTTP:net \
	./sidecar/gateway/translate/:FuzzChatToMessages ./sidecar/gateway/translate/:FuzzMessagesToChat \
	./sidecar/gateway/translate/:FuzzMessageToChatAnswer ./sidecar/gateway/translate/:FuzzChatToMessageAnswer \
	./sidecar/gateway/translate/:FuzzErrorBody \
	./sidecar/gateway/translate/:FuzzResponsesToMessages ./sidecar/gateway/translate/:FuzzMessagesToResponsesStream \
	./sidecar/gateway/translate/:FuzzMessagesToChatStream ./sidecar/gateway/translate/:FuzzChatToMessagesStream
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; time="$(FUZZTIME)"; \
		case "$$rest" in *:net) time="$(FUZZTIME_NET)";; esac; \
		echo "fuzz $$name ($$pkg) for $$time"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$time -fuzzminimizetime 5s $$pkg || exit 1; \
	done

# The fault-injection suite (tools/chaos) in its long form: real Consul,
# sidecars and agents under load from vegeta, one fault per scenario. The
# table goes to test-artifacts/chaos.md too. make test runs the short form.
chaos: consul
	CONSUL_BIN="$$(scripts/consul.sh)" $(GO) test -C tools -tags e2e -count=1 -timeout 40m -run TestChaos ./chaos/ \
		-args -chaos.full -chaos.table=$(CURDIR)/test-artifacts/chaos.md
	@cat test-artifacts/chaos.md

# N agents, each with its sidecar, on one Consul; some hung, some killed
# (tools/fleet). The report goes to test-artifacts/fleet.json too.
N ?= 50
fleet: build consul
	CONSUL_BIN="$$(scripts/consul.sh)" bin/fleet -n $(N) -json test-artifacts/fleet.json

clean:
	rm -rf bin
