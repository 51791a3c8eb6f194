#!/usr/bin/env bash
# Before/after numbers for the scale issue, side by side in one run:
#
#   bench/before-after.sh OLD_REV [NEW_REV] [-- BENCH FLAGS...]
#   bench/before-after.sh a3be46f main -- --rows 1000000 --ids ordered
#
# Builds the upicdc binaries of two git revisions (NEW_REV defaults to HEAD)
# with `make build` from `git archive` copies in a temporary directory, then
# runs `upicdc bench --scenario scale` ROUNDS times (default 2) for each,
# alternating OLD and NEW on the same generated CSV files (the first run
# writes them with --keep-files, the others read them with --files-from), and
# prints every table with the machine's load before the run. The bench
# driver is NEW's binary when it has the scale scenario, else one built from
# this checkout; only the phases' --bin changes between runs.
#
# Environment: ROUNDS (default 2), KEEP=1 keeps the temporary directory
# (binaries, CSV files, each run's table), TMPDIR for where it goes (the stores
# need about 7x the CSV bytes of free space).
set -euo pipefail

usage() { echo "usage: $0 OLD_REV [NEW_REV] [-- bench flags...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
old_rev=$1; shift
new_rev=HEAD
if [ $# -ge 1 ] && [ "$1" != "--" ]; then new_rev=$1; shift; fi
if [ $# -ge 1 ]; then [ "$1" = "--" ] || usage; shift; fi
extra=("$@")
rounds=${ROUNDS:-2}

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
old=$(git -C "$repo" rev-parse --verify "$old_rev^{commit}")
new=$(git -C "$repo" rev-parse --verify "$new_rev^{commit}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/upicdc-before-after.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$tmp"' EXIT; fi

build() { # build NAME COMMIT
	mkdir -p "$tmp/src-$1"
	git -C "$repo" archive "$2" | tar -x -C "$tmp/src-$1"
	make -s -C "$tmp/src-$1" build BIN="$tmp/upicdc-$1" VERSION="$(git -C "$repo" describe --always "$2")" >&2
}
echo "building $old_rev ($(git -C "$repo" rev-parse --short "$old")) and $new_rev ($(git -C "$repo" rev-parse --short "$new"))" >&2
build old "$old"
build new "$new"
driver=$tmp/upicdc-new
if ! "$driver" bench --help 2>/dev/null | grep -q -- '--files-from'; then
	echo "$new_rev has no bench --scenario scale: the driver is built from $repo" >&2
	(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/upicdc-driver" ./cmd/upicdc)
	driver=$tmp/upicdc-driver
fi

files=(--keep-files "$tmp/files")
for round in $(seq 1 "$rounds"); do
	for side in old new; do
		rev=$old_rev; [ $side = new ] && rev=$new_rev
		echo
		echo "== round $round: ${side^^} $rev ($(git -C "$repo" rev-parse --short "$([ $side = old ] && echo "$old" || echo "$new")")); load: $(uptime | sed 's/.*load average: //')"
		"$driver" bench --scenario scale --bin "$tmp/upicdc-$side" "${files[@]}" "${extra[@]}" | tee "$tmp/$side-$round.txt"
		files=(--files-from "$tmp/files")
	done
done
[ "${KEEP:-0}" = 1 ] && echo "kept: $tmp" >&2
exit 0
