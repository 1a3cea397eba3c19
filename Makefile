# Warden. `make run` starts it on embedded defaults; `make test` runs every check.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(PATH):/usr/local/go/bin
export GOFLAGS := -buildvcs=false

GO       ?= go
# Fuzz targets run by `make test`: package:target:executions. The budget is a
# count of executions (about 10 s each on the 2-core machine), not a
# duration: a duration races the coordinator's deadline in Go 1.26
# (golang/go#75804, fixed in 1.27) and fails a run that found nothing with
# "context deadline exceeded" on a loaded machine. FUZZTIME=60s (or 1000000x)
# overrides every budget.
FUZZTIME ?=
FUZZ     := \
	./policy:FuzzLoad:60000 \
	./policy:FuzzLoadTests:60000 \
	./policy:FuzzCondition:40000 \
	./policy/shell:FuzzSplit:500000 \
	./policy/shell:FuzzQuote:500000 \
	./shared/hooks:FuzzDecode:50000 \
	./shared/audit:FuzzAppendString:500000 \
	./shared/audit:FuzzArchiveBatch:10000 \
	./shared/audit:FuzzDecodeCanonical:400000 \
	./shared/audit:FuzzMayHoldSecret:70000 \
	./shared/pricing:FuzzLoad:150000 \
	./shared/llm/meter:FuzzAnthropicStream:200000 \
	./shared/llm/meter:FuzzResponsesStream:80000 \
	./shared/llm/meter:FuzzChatStream:120000 \
	./shared/llm:FuzzBedrockStream:15000 \
	./shared/llm/meter:FuzzJSON:20000 \
	./shared/watchdog:FuzzObserve:20000 \
	./shared/notify:FuzzVerify:50000 \
	./shared/notify:FuzzTelegramAnswer:25000 \
	./shared/notify:FuzzClean:20000 \
	./shared/notify:FuzzParseEnvelope:30000 \
	./shared/dynamo:FuzzAppendedRecord:40000 \
	./shared/s3store:FuzzParseListAnswer:30000 \
	./shared/awssecrets:FuzzParseAnswer:30000 \
	./shared/stepfn:FuzzParseError:20000 \
	./shared/lambdas:FuzzHTTPRequest:25000 \
	./shared/lambdas/notifier:FuzzInvoke:20000 \
	./shared/lambdas/ingest:FuzzParseCloudTrailCall:30000 \
	./policy/iameval:FuzzParse:250000 \
	./shared/awsquery:FuzzParseAnswer:120000 \
	./shared/gitproxy:FuzzReadPush:100000 \
	./shared/gitproxy:FuzzLoadConfig:30000 \
	./shared/gitproxy:FuzzAnswerLimiter:100000 \
	./shared/llm:FuzzLoadConfig:30000 \
	./cmd/warden:FuzzGitCredential:20000

# The CDK app (infra/): where `make functions` puts the Lambda bootstraps, and the CDK context of
# `make synth` and `make deploy` (make deploy STAGE=prod CONFIG=deploy/prod.json; infra/README.md).
FUNCTIONS_DIR := build/functions
STAGE  ?=
CONFIG ?=
# No network from the CDK but the deploy itself: no version check, no telemetry, no EC2 metadata
# probe; and no jsii banner about Node 20.
CDK_ENV := CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: run build warden test vet fmt-check unit fuzz bench-test bench functions synth deploy infra-test clean

## run: start the local Warden on embedded storage (.warden/) with the example
## policy, hot-reloaded when policy/examples/policy.yaml changes.
run: warden
	./bin/warden serve --policy policy/examples/policy.yaml

## build: the warden binary (bin/warden) and the Lambda functions (build/functions/).
build: warden functions

warden:
	$(GO) build -o bin/warden ./cmd/warden

## test: formatting, vet, every unit test, short fuzz runs, the benchmark module's tests, the CDK
## app's assertion tests.
test: fmt-check vet unit fuzz bench-test infra-test

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
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget="$(FUZZTIME)"; budget=$${budget:-$${rest#*:}x}; \
		echo "fuzz $$pkg $$name for $$budget"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget -fuzzminimizetime 1s $$pkg; \
	done

bench-test:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

## infra-test: the CDK app's tests (its own module: compiling the CDK takes a minute or two cold).
infra-test:
	cd infra && $(CDK_ENV) $(GO) vet ./... && $(CDK_ENV) $(GO) test -count=1 ./...

## bench: the engine's benchmarks, Warden vs Cedar vs Rego side by side, then
## the hook round trip of the local server against a trivial handler, then the
## LLM gateway against httputil.ReverseProxy and nginx (installs nginx if root), and the Lambda
## bootstraps' sizes and cold init under the Runtime Interface Emulator (functions/README.md), and an
## approval's round trip through Slack (the hook's call to the message posted, the click to the hook
## unblocked).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./policy/... ./shared/sqlite/...
	cd bench && $(GO) run ./cmd/policybench
	cd bench && $(GO) run ./cmd/hookbench
	cd bench && $(GO) run ./cmd/gatewaybench
	$(GO) test -run '^$$' -bench ColdStart -benchtime 10x ./functions/rietest
	$(GO) test -run '^$$' -bench Approval -benchtime 20x ./cmd/warden
	$(GO) test -run '^$$' -bench GitThroughWarden -benchtime 3x ./cmd/warden

# No inlining in the code that runs once per AWS call or at a policy's
# compilation (the AWS SDK, CEL's parser and checker, protobuf, YAML): it
# waits on the network or runs at load, and inlining it costs 1.6 MB of
# each binary that links the policy engine (functions/README.md). CEL's
# evaluator and value types, on every decision, keep it. Nor in Warden's
# own code that waits on a network or a human (the server's routing and
# admin API, the stores' adapters, approvals, notifications, the git
# remote, the broker): 0.13 MB more.
FUNCTION_GCFLAGS = -gcflags='github.com/aws/...=-l' -gcflags='cel.dev/...=-l' \
	-gcflags='cel.dev/cel-go/interpreter=' -gcflags='cel.dev/cel-go/common/types/...=' \
	-gcflags='github.com/antlr4-go/...=-l' -gcflags='google.golang.org/protobuf/...=-l' -gcflags='go.yaml.in/...=-l' \
	$(foreach p,server gitproxy broker approval... slackapp dynamo/... notify/...,-gcflags='github.com/wardenhq/warden/shared/$(p)=-l') \
	-gcflags='github.com/slack-go/...=-l' -gcflags='encoding/xml=-l'

## functions: each functions/<name>/main.go as a Lambda bootstrap for PROVIDED_AL2023 on arm64,
## build/functions/<name>/bootstrap.
functions:
	@shopt -s nullglob; built=0; \
	for main in functions/*/main.go; do \
		name=$$(basename "$$(dirname "$$main")"); out=$(FUNCTIONS_DIR)/$$name/bootstrap; \
		mkdir -p "$$(dirname "$$out")"; \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' $(FUNCTION_GCFLAGS) -o "$$out" ./functions/$$name; \
		echo "built $$out ($$(du -h "$$out" | cut -f1))"; built=$$((built + 1)); \
	done; \
	if [ $$built -eq 0 ]; then echo "make functions: no functions/*/main.go yet: nothing to build"; fi

# cdk_context is the context of STAGE and CONFIG as JSON, for CDK_CONTEXT_JSON.
cdk_context = {$(subst $(space),$(comma),$(strip $(if $(STAGE),"stage":"$(STAGE)") $(if $(CONFIG),"config":"$(abspath $(CONFIG))")))}
empty :=
space := $(empty) $(empty)
comma := ,

## synth: build the functions, then run the CDK app offline (no CDK CLI, no AWS account) into
## cdk.out/: the stack's CloudFormation template and its assets.
synth: functions
	rm -rf cdk.out
	cd infra && $(CDK_ENV) CDK_OUTDIR=$(CURDIR)/cdk.out CDK_CONTEXT_JSON='$(cdk_context)' $(GO) run .
	@echo "synthesized: $$(ls cdk.out/*.template.json)"

## deploy: build the functions, then `cdk deploy` the stage's stack with the pinned CDK CLI
## (installed into a cache directory by infra/install-cdk.sh). Needs AWS credentials and a
## bootstrapped account (infra/README.md). CDK_DEPLOY_FLAGS adds flags (--require-approval never).
deploy: functions
	cdk=$$(infra/install-cdk.sh); \
	$(CDK_ENV) "$$cdk" deploy --no-notices $(if $(STAGE),-c stage=$(STAGE)) $(if $(CONFIG),-c config=$(abspath $(CONFIG))) $(CDK_DEPLOY_FLAGS)

clean:
	rm -rf bin build cdk.out
