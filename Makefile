# Warden. `make run` starts it on embedded defaults; `make test` runs every check.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(PATH):/usr/local/go/bin
export GOFLAGS := -buildvcs=false

GO       ?= go
FUZZTIME ?= 10s
# Fuzz targets run by `make test`: package:target.
FUZZ     := ./policy:FuzzLoad ./policy:FuzzLoadTests ./policy:FuzzCondition ./policy/shell:FuzzSplit ./policy/shell:FuzzQuote ./shared/hooks:FuzzDecode ./shared/audit:FuzzAppendString ./shared/audit:FuzzArchiveBatch ./shared/audit:FuzzDecodeCanonical ./shared/audit:FuzzMayHoldSecret ./shared/pricing:FuzzLoad ./shared/llm/meter:FuzzAnthropicStream ./shared/llm/meter:FuzzResponsesStream ./shared/llm/meter:FuzzChatStream ./shared/llm:FuzzBedrockStream ./shared/notify:FuzzVerify ./shared/notify:FuzzTelegramAnswer

.PHONY: run build test vet fmt-check unit fuzz bench-test bench synth deploy clean

## run: start the local Warden on embedded storage (.warden/) with the example
## policy, hot-reloaded when policy/examples/policy.yaml changes.
run: build
	./bin/warden serve --policy policy/examples/policy.yaml

build:
	$(GO) build -o bin/warden ./cmd/warden

## test: formatting, vet, every unit test, short fuzz runs, the benchmark module's tests.
test: fmt-check vet unit fuzz bench-test

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi; echo "gofmt: ok"

vet:
	$(GO) vet ./...
	cd infra && $(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

fuzz:
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg; \
	done

bench-test:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

## bench: the engine's benchmarks, Warden vs Cedar vs Rego side by side, then
## the hook round trip of the local server against a trivial handler, then the
## LLM gateway against httputil.ReverseProxy and nginx (installs nginx if root).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./policy/... ./shared/sqlite/...
	cd bench && $(GO) run ./cmd/policybench
	cd bench && $(GO) run ./cmd/hookbench
	cd bench && $(GO) run ./cmd/gatewaybench

synth deploy:
	@echo "make $@: the CDK app (infra/) arrives with the serverless deployment; nothing to $@ yet" >&2; exit 1

clean:
	rm -rf bin cdk.out
