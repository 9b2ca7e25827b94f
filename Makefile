# Everything a developer or CI runs. Each target installs what it needs into .tools/
# (a Python virtualenv with moto, cfn-lint, cargo-lambda and the SAM CLI), so a fresh
# clone needs only Rust, Python 3 and make, and Node.js 20+ for the JavaScript tests. The
# local DynamoDB (dynoxide) is a crate of the workspace, built into target/ like everything else.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ARCH ?= arm64
PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
# The local DynamoDB for dev, test and bench: dynoxide (local-dynamodb/), or DYNAMODB=moto to
# compare. moto runs answering one request at a time (see the script for why).
DYNAMODB ?= dynoxide
export DYNAMODB
export MOTO_SERVER := $(CURDIR)/scripts/dynamodb-server.py
export CARGO_LAMBDA := $(BIN)/cargo-lambda

ifeq ($(ARCH),arm64)
  LAMBDA_ARCH_FLAG := --arm64
else ifeq ($(ARCH),x86_64)
  LAMBDA_ARCH_FLAG := --x86-64
else
  $(error ARCH must be arm64 or x86_64, not $(ARCH))
endif

.PHONY: help tools sam-tools browser-tools backend-tools dev test policies fuzz load bench unit lint build deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.test-tools: | $(TOOLS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' 'cfn-lint>=1.30,<2' 'cargo-lambda>=1.8,<2'
	touch $@

$(VENV)/.sam-tools: $(VENV)/.test-tools
	$(BIN)/pip install --quiet --disable-pip-version-check 'aws-sam-cli>=1.140,<2'
	touch $@

$(TOOLS):
	mkdir -p $@

tools: $(VENV)/.test-tools ## Install moto, cfn-lint and cargo-lambda into .tools/

sam-tools: $(VENV)/.sam-tools ## Also install the SAM CLI (for lint and deploy)

CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser-tools: tests/js/node_modules/.installed clients/js/node_modules/.installed ## Install Chromium (Debian's package), playwright-core and TypeScript for the JavaScript tests
	@[ -x "$(CHROMIUM)" ] || { echo "installing Debian's chromium"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

backend-tools: ## Install PHP's CLI (Debian's package) for the PHP backend example's test (Python and Node are there already)
	@command -v php >/dev/null || { echo "installing Debian's php-cli"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends php-cli >/dev/null; }

# The JavaScript tests (the client library's, and the chat page's in Chromium) need Node.js 20+.
NEED_NODE = @node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null && command -v npm >/dev/null || { \
  echo "make test needs Node.js 20 or later and npm for the JavaScript tests (the client library, the chat page in Chromium); found: $$(node --version 2>/dev/null || echo no node), $$(npm --version 2>/dev/null || echo no npm). Install them from nodejs.org, or your distribution's packages where they are 20 or later (Debian 12's are 18)" >&2; exit 1; }

tests/js/node_modules/.installed: tests/js/package-lock.json
	$(NEED_NODE)
	cd tests/js && npm ci --no-audit --no-fund
	touch $@

clients/js/node_modules/.installed: clients/js/package-lock.json
	$(NEED_NODE)
	cd clients/js && npm ci --no-audit --no-fund
	touch $@

dev: tools ## Run the service locally: the local DynamoDB (dynoxide; DYNAMODB=moto for moto), the functions under cargo lambda watch, the local gateway (APP=workerman-chat for the chat example)
	scripts/dev.sh

test: tools browser-tools backend-tools ## Run every test: unit, handlers, end to end through the local gateway, the client library, and in a browser
	# The functions first, built as cargo lambda watch builds them, so the end-to-end tests find them ready.
	cargo build --locked --bin connect --bin message --bin disconnect --bin api --bin fan-out
	cargo build --locked --bin gateway-client
	# The examples' functions, which their end-to-end tests run the same way.
	cargo build --locked -p workerman-chat -p hello -p php --bins
	# Test threads get 4 MiB of stack: the handlers' futures, unoptimised, nest deep enough to come
	# within a factor of two of the default 2 MiB when a hook ends connections in turn (measured:
	# tests/events passes at 1.25 MiB, overflows at 1 MiB). Release builds, which Lambda runs, are
	# far shallower.
	RUST_MIN_STACK=4194304 cargo test --workspace --locked
	# The client library: type-checked and built, its unit tests, then it and the chat page
	# against the real local stack, in Node and in Chromium.
	cd clients/js && npm test
	cd tests/js && npm test

FUZZ_CASES ?= 20000
fuzz: tools ## A long property-test run of the parser and of the message handler on the local DynamoDB (FUZZ_CASES=20000)
	PROPTEST_CASES=$$(( $(FUZZ_CASES) * 10 )) cargo test --locked -p shared --lib properties
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --locked -p tests --test fuzz -- --nocapture

bench: tools ## Fan-out, cold start, per-message cost, reads per send, size and memory (BENCHMARKS.md)
	$(MAKE) --no-print-directory build ARCH=x86_64
	cargo build --locked --bin connect --bin message --bin disconnect
	cargo run --locked --profile harness -p bench

LOAD_CLIENTS ?= 1000
load: tools ## Many real clients connect, chat and leave at once through the local stack (LOAD_CLIENTS=1000)
	cargo build --locked --bin connect --bin message --bin disconnect
	LOAD_CLIENTS=$(LOAD_CLIENTS) cargo test --locked -p tests --test load -- --nocapture

unit: ## Run only the unit tests of the shared crate (no servers needed)
	cargo test -p shared --lib

lint: sam-tools ## cargo fmt --check, clippy -D warnings, cfn-lint, sam validate --lint, the policy check
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cfn-lint template.yaml
	sam validate --lint --template template.yaml
	$(MAKE) --no-print-directory policies

policies: tools ## Fail on a function policy wider than the table, @connections and reading the token secret (and prove the check bites)
	$(BIN)/python scripts/check-policies.py template.yaml
	@refused=$$($(BIN)/python scripts/check-policies.py scripts/testdata/too-wide.yaml | grep -c 'too-wide.yaml: [A-Za-z]*: ' || true); \
	  if [ "$$refused" != 8 ]; then echo "check-policies.py refused $$refused of the 8 bad policies in scripts/testdata/too-wide.yaml"; exit 1; fi; \
	  echo "check-policies.py refuses all 8 bad policies in scripts/testdata/too-wide.yaml"

build: tools ## Build the functions' bootstraps for Lambda (ARCH=arm64 by default; ARCH=x86_64 to override)
	cargo lambda build --release $(LAMBDA_ARCH_FLAG) --output-format zip \
	  --package connect --package message --package disconnect --package api --package fan-out
	@for f in connect message disconnect api fan-out; do \
	  printf '%-11s %s\n' "$$f" "$$(du -h target/lambda/$$f/bootstrap.zip | cut -f1)"; done

deploy: sam-tools ## Build with SAM and deploy (guided the first time)
	sam build --parameter-overrides Architecture=$(ARCH)
	if [ -f samconfig.toml ]; then sam deploy --parameter-overrides Architecture=$(ARCH); \
	else sam deploy --guided --parameter-overrides Architecture=$(ARCH); fi

clean: ## Remove build output and the installed tools
	cargo clean
	rm -rf $(TOOLS) .aws-sam
