# difyctl — build and test entry points. `make test` is the project's test
# command: on a fresh machine it installs and starts what the tests need.
GO      ?= go
PKG     := github.com/difyctl/difyctl/internal/buildinfo
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)

.PHONY: build install test unit e2e engine fixtures hostcheck vet fmt-check bench clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/difyctl ./cmd/difyctl

install:
	$(GO) install -trimpath -ldflags "$(LDFLAGS)" ./cmd/difyctl

# Engine (Debian's docker.io, installed and started when missing), fixture
# images (built locally, no registry), then every test with the race detector,
# then a check that the tests left the host as they found it (run even when a
# test failed). Anonymous volumes name no project, so the ones present before
# the tests are recorded first (hostcheck -record) and only new unused ones
# count after.
test: engine fixtures
	@rc=0; base=$$(mktemp); hc=; \
	if $(GO) run ./internal/testenv/hostcheck -record $$base; then hc="-baseline $$base"; else rc=1; fi; \
	$(GO) test -race -timeout 25m -count=1 ./... || rc=$$?; \
	$(GO) run ./internal/testenv/hostcheck $$hc || rc=1; rm -f $$base; exit $$rc

# Unit tests only (-short): nothing needs or touches the engine.
unit:
	$(GO) test -race -short ./...

# End-to-end tests only: the real binary against the real engine.
e2e: engine fixtures
	@rc=0; base=$$(mktemp); hc=; \
	if $(GO) run ./internal/testenv/hostcheck -record $$base; then hc="-baseline $$base"; else rc=1; fi; \
	$(GO) test -race -timeout 25m -count=1 ./internal/e2e/... || rc=$$?; \
	$(GO) run ./internal/testenv/hostcheck $$hc || rc=1; rm -f $$base; exit $$rc

hostcheck:
	$(GO) run ./internal/testenv/hostcheck

engine:
	bash internal/testenv/ensure-engine.sh

fixtures:
	$(GO) run ./internal/testenv/buildfixtures

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin dist
