#!/usr/bin/env bash
# The bridge's speed benchmark (issue 14): builds the bridge, the provider
# fakes, a plain x/net/webdav.Dir server and the driver-alone tool from this
# tree, then runs tests/bench/compare, which serves each as a process of its
# own next to `rclone serve webdav`, interleaves them over repetitions and
# prints a markdown table (measure, bridge, peer, ratio, goal, met?).
# Arguments go to the compare tool:
#   bash tests/bench/compare.sh -quick                  # smoke test, about a minute
#   bash tests/bench/compare.sh -big -out bench.md      # the README's table (5 repetitions)
#   bash tests/bench/compare.sh -providers disktop -no-local -reps 3
# It needs rclone, wrk and curl (installed from Debian when missing) and,
# with -big, about 20 GiB free in the temp folder (or -work DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
for tool in rclone wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/bridge" .
go build -o "$bin/fakeprovider" ./tests/fakeprovider
go build -o "$bin/plaindav" ./tests/bench/plaindav
go build -o "$bin/driveralone" ./tests/bench/driveralone
go build -o "$bin/compare" ./tests/bench/compare
"$bin/compare" -bridge "$bin/bridge" -fakeprovider "$bin/fakeprovider" \
  -plaindav "$bin/plaindav" -driveralone "$bin/driveralone" "$@"
