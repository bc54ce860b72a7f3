#!/usr/bin/env bash
# Says which packages a camd binary's bytes belong to, as a Markdown table
# (docs/performance.md carries its output). It builds the target with
# scripts/dist.sh twice, stripped as shipped and once more keeping the
# symbol table, which scripts/binsize reads.
#
#   scripts/binsize.sh                  armv7, the 20 largest packages
#   scripts/binsize.sh mipsle -n 40     another target, more rows
#   scripts/binsize.sh armv7 -modules   by module rather than package
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-armv7}"
shift || true
# One version and build time for both builds, so they differ only in -s.
export VERSION="${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}"
export BUILD_TIME="${BUILD_TIME:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DIST_DIR="$tmp/stripped" scripts/dist.sh "$target" >&2
DIST_DIR="$tmp/symbols" DIST_SYMBOLS=1 scripts/dist.sh "$target" >&2
go run ./scripts/binsize "$@" "$tmp/symbols/camd-linux-$target" "$tmp/stripped/camd-linux-$target"
