#!/usr/bin/env bash
# Checks camd against its size and memory budgets and prints one row each:
# the figure, the budget, OK or OVER. Exits 1 when a budget is over or a
# measurement fails.
#
#   scripts/budgets.sh                        binary size and idle RSS
#   scripts/budgets.sh localhost/camd:test    also the container image (podman)
#
# Needs go; the image row also needs podman. No curl: a small Go helper
# (scripts/rss) drives the server.
set -euo pipefail
cd "$(dirname "$0")/.."

MIB=1048576
# The goals camd is held to (docs/performance.md, "Budgets"): binaries
# stripped as dist builds them, with everything camd serves. A feature that
# cannot fit does not raise them; the issue that asks for it decides.
BIN_BUDGET=$((8 * MIB))     # armv7
MIPS_BUDGET=$((9 * MIB))    # mipsle, softfloat
RSS_BUDGET=$((10 * MIB))    # idle, after start with an existing data directory
IMAGE_BUDGET=$((10 * MIB))
image="${1:-}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

rows=()
over=0
# row NAME FIGURE_BYTES BUDGET_BYTES
row() {
	local verdict=OK
	if (($2 > $3)); then
		verdict=OVER
		over=1
	fi
	rows+=("$(printf '%-30s %12s %12s   %s' "$1" "$(mib "$2")" "$(mib "$3")" "$verdict")")
}
# note NAME TEXT: a row without a figure.
note() { rows+=("$(printf '%-30s %s' "$1" "$2")"); }

# Built exactly as `make dist` builds them; the build log goes to stderr.
DIST_DIR="$tmp" scripts/dist.sh armv7 mipsle amd64 >&2

row "armv7 binary (stripped)" "$(stat -c %s "$tmp/camd-linux-armv7")" "$BIN_BUDGET"
row "mipsle binary (stripped)" "$(stat -c %s "$tmp/camd-linux-mipsle")" "$MIPS_BUDGET"

go build -o "$tmp/rss" ./scripts/rss
mkdir "$tmp/data"
rss_kib=$("$tmp/rss" "$tmp/camd-linux-amd64" "$tmp/data")
row "idle RSS (linux/amd64)" "$((rss_kib * 1024))" "$RSS_BUDGET"

if [[ -z "$image" ]]; then
	note "container image" "not measured (no image given)"
elif ! command -v podman >/dev/null; then
	note "container image" "not measured (podman not found)"
else
	if size=$(podman image inspect --format '{{.Size}}' "$image" 2>"$tmp/podman.err"); then
		row "container image" "$size" "$IMAGE_BUDGET"
		rows[-1]+=" ($image)"
	else
		# A named image that cannot be measured is a failure, not a skip.
		note "container image" "not measured: $(head -n1 "$tmp/podman.err")"
		over=1
	fi
fi

printf '%-30s %12s %12s   %s\n' check figure budget result
printf '%s\n' "${rows[@]}"
exit "$over"
