# difyctl — build and test entry points. `make test` is the project's test
# command: on a fresh machine it installs and starts what the tests need.
GO      ?= go
PKG     := github.com/difyctl/difyctl/internal/buildinfo
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)

.PHONY: build install test unit engine fixtures vet fmt-check bench clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/difyctl ./cmd/difyctl

install:
	$(GO) install -trimpath -ldflags "$(LDFLAGS)" ./cmd/difyctl

# Engine (Debian's docker.io, installed and started when missing), fixture
# images (built locally, no registry), then every test with the race detector.
test: engine fixtures
	$(GO) test -race -timeout 20m -count=1 ./...

# Unit tests only: no engine needed (end-to-end tests skip unless CI=true).
unit:
	$(GO) test -race ./...

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
