# hardway: build, test, lab, cluster, bench, man, install.
PREFIX ?= /usr/local
CARGO ?= cargo
TOOLS := mkcluster cidr-alloc mkcerts mkunits mkvm node-push route-sync etcd-check etcd-sync etcd-snapshot
# Where cargo puts binaries (respects CARGO_TARGET_DIR).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
export PATH := $(TARGET_DIR)/debug:$(PATH)

.PHONY: all build release test fuzz test-e2e man pictures install bench lab lab-down lab-restore cluster cluster-down clean fmt lint

all: build

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --workspace --bins --release

## test: everything, real components included (needs root: netns, etcd, sshd, libvirt).
## lint first (it is cheap and keeps the house in order), then the shell tests and the fuzzers, so
## cargo's summary closes the output.
test: build
	$(MAKE) lint
	$(MAKE) test-e2e
	$(MAKE) fuzz
	$(CARGO) test --workspace --no-fail-fast

## fuzz: the document and inventory readers, FUZZ_SECONDS (default 60) each.
fuzz:
	bash scripts/fuzz.sh

## test-e2e: shell tests in tests/ that run the tools together as a user would.
test-e2e: build
	@set -e; for t in tests/*.sh; do [ -e "$$t" ] || continue; echo "== $$t"; bash "$$t"; done

## pictures: redraw the README's pictures of the plan (docs/ebook-9node*.svg) with Graphviz.
pictures: build
	HARDWAY_BIN=$(TARGET_DIR)/debug bash scripts/pictures.sh docs

## man: regenerate man/ and the shell completions from each tool's clap Command.
man:
	$(CARGO) run -q -p xtask -- man man

install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	for t in $(TOOLS); do install -m 0755 $(TARGET_DIR)/release/$$t $(DESTDIR)$(PREFIX)/bin/; done
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	for t in $(TOOLS); do install -m 0644 man/completions/$$t.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t; done

## bench: every tool against what a user would otherwise run; writes bench/results.md.
bench: release
	bash scripts/bench.sh

## lab: installs packages, builds, and runs the whole pipeline in network namespaces (root).
## On a running lab, applies INVENTORY to it: etcd members join and leave, routes follow.
INVENTORY ?= examples/lab.csv
lab:
	INVENTORY="$(INVENTORY)" bash scripts/lab.sh up

lab-down:
	bash scripts/lab.sh down

## lab-restore: the running lab's etcd rebuilt from SNAPSHOT (an etcd-snapshot save file).
lab-restore:
	SNAPSHOT="$(SNAPSHOT)" bash scripts/lab.sh restore

cluster: release
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

fmt:
	$(CARGO) fmt --all

## lint: formatting and clippy with warnings as errors, over every crate and test.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf out lab bench/tmp
