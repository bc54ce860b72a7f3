#!/usr/bin/env bash
# Cross-builds static camd binaries for the cams' SoCs (and amd64 for
# staging) and prints their sizes. `make dist` calls this; it works on its
# own where make is not installed.
#
#   scripts/dist.sh                   all targets into dist/
#   scripts/dist.sh armv7 amd64       only those targets
#
# Environment: VERSION (default: git describe --always --dirty, else "dev"),
# BUILD_TIME (default: now, RFC 3339 UTC), DIST_DIR (default: dist),
# DIST_SYMBOLS=1 to keep the symbol table (scripts/binsize.sh reads it; the
# code and data are the same as stripped), DIST_TAGS for extra build tags
# (profiling builds only).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}"
BUILD_TIME="${BUILD_TIME:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
DIST_DIR="${DIST_DIR:-dist}"

# camd silently ignores a build time it cannot parse, which would lower the
# clock's floor, so refuse a malformed one here.
if ! [[ "$BUILD_TIME" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]]; then
	echo "dist.sh: BUILD_TIME=$BUILD_TIME is not RFC 3339 (e.g. 2026-11-28T12:00:00Z)" >&2
	exit 2
fi
# -X takes the rest of its word as the value; a space would split the flags.
if [[ "$VERSION" =~ [[:space:]] ]]; then
	echo "dist.sh: VERSION must not contain spaces: '$VERSION'" >&2
	exit 2
fi

# name -> go env for the build. GOARM/GOMIPS are set for every target (and
# ignored where they do not apply) so values inherited from the caller's
# environment never leak into a build.
declare -A targets=(
	[armv6]="GOARCH=arm GOARM=6"
	[armv7]="GOARCH=arm GOARM=7"
	[arm64]="GOARCH=arm64"
	[mipsle]="GOARCH=mipsle GOMIPS=softfloat"
	[amd64]="GOARCH=amd64"
)
order=(armv6 armv7 arm64 mipsle amd64)

if (($# > 0)); then
	want=("$@")
else
	want=("${order[@]}")
fi
for name in "${want[@]}"; do
	if [[ -z "${targets[$name]+x}" ]]; then
		echo "dist.sh: unknown target '$name' (known: ${order[*]})" >&2
		exit 2
	fi
done

# -s drops the symbol table, -w the DWARF debug information.
# nethttpomithttp2 leaves net/http's HTTP/2 out: camd serves HTTP/1.1 only
# (app/app.go, http1Only), so it is dead code: 0.3 MiB of armv7.
tags=nethttpomithttp2
# DIST_TAGS adds build tags, for profiling builds only (camdprofile:
# internal/profiling); releases are built without.
if [[ -n "${DIST_TAGS:-}" ]]; then
	tags="$tags,$DIST_TAGS"
fi
strip="-s -w"
if [[ "${DIST_SYMBOLS:-}" == 1 ]]; then
	strip="-w"
fi

mkdir -p "$DIST_DIR"
built=()
for name in "${want[@]}"; do
	out="$DIST_DIR/camd-linux-$name"
	echo "building $out (${targets[$name]})" >&2
	# shellcheck disable=SC2086 # the target's env is a word list on purpose
	env GOOS=linux GOARM= GOMIPS= ${targets[$name]} CGO_ENABLED=0 \
		go build -trimpath -tags "$tags" \
		-ldflags "$strip -X main.version=$VERSION -X main.buildTime=$BUILD_TIME" \
		-o "$out" .
	built+=("$out")
done

echo "version $VERSION, build time $BUILD_TIME"
for out in "${built[@]}"; do
	bytes=$(stat -c %s "$out")
	awk -v f="$out" -v b="$bytes" 'BEGIN { printf "%-28s %10d bytes %6.1f MiB\n", f, b, b / 1048576 }'
done
