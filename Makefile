# Thin wrappers: the logic lives in scripts/ so it also runs where make is
# not installed. Override with e.g. `make dist VERSION=v1.2.3`; VERSION,
# BUILD_TIME and DIST_DIR are passed through, and scripts/dist.sh fills in
# what is left unset.
export VERSION BUILD_TIME DIST_DIR

.PHONY: dist budgets binsize bench

# Static binaries for armv6, armv7, arm64, mipsle (softfloat) and amd64 in dist/.
dist:
	bash scripts/dist.sh

# Size and memory budgets; `make budgets IMAGE=localhost/camd:test` also
# checks the container image.
budgets:
	bash scripts/budgets.sh $(IMAGE)

# Where a binary's bytes go, by package, as docs/performance.md shows it;
# armv7 unless TARGET=mipsle (or another dist target).
binsize:
	bash scripts/binsize.sh $(or $(TARGET),armv7)

# camd against a bare net/http reference, and its budgets: prints one table
# with every goal beside its figure (docs/performance.md). SHORT=1 for the
# quick run CI does.
bench:
	go run ./bench $(if $(SHORT),-short)
