#!/usr/bin/env bash
# Refreshes the vendored chart library (uPlot) from the npm registry:
#   ./refresh-vendor.sh           # the version in assets/vendor/uplot/VERSION
#   ./refresh-vendor.sh 1.6.32    # another version (then commit the result)
# It uses `npm pack`, so nothing is installed and no build step is needed at
# run time: the page loads the files embedded in the binary.
set -euo pipefail
cd "$(dirname "$0")"
dest=assets/vendor/uplot
version=${1:-$(cat "$dest/VERSION")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$dest/"
echo "$version" >"$dest/VERSION"
echo "uPlot $version vendored into $dest"
