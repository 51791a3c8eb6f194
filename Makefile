# upicdc: build, test, benchmark and install.
#
#   make build                  static release binary ./upicdc (CGO_ENABLED=0)
#   make test                   go vet + the test suite with the race detector
#   make bench                  the README's benchmarks
#   make install                build, then install to $(PREFIX)/bin (default /usr/local/bin)
#   make install PREFIX=$HOME/.local
#
# The release build links no C code, so the binary is static: it has no ELF
# interpreter and runs on any Linux of the same architecture, whatever its
# libc. Its version (`upicdc version`) is `git describe` of the checkout.

PREFIX  ?= /usr/local
BIN     ?= upicdc
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.linkVersion=$(VERSION)

.PHONY: build test bench install clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o '$(BIN)' ./cmd/upicdc

# The race detector needs cgo and a C compiler.
test:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race ./...

bench:
	$(GO) test ./cdc -run '^$$' -bench BenchmarkMerge -benchtime 5x
	$(GO) test ./agg -run '^$$' -bench BenchmarkProcessor -benchtime 3x
	$(GO) test ./store -run '^$$' -bench BenchmarkTxnHistory
	$(GO) test ./cdc/delta -run '^$$' -bench BenchmarkExport -benchtime 3x

install: build
	install -d '$(DESTDIR)$(PREFIX)/bin'
	install -m 0755 '$(BIN)' '$(DESTDIR)$(PREFIX)/bin/upicdc'

clean:
	rm -f '$(BIN)'
