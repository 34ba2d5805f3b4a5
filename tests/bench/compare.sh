#!/usr/bin/env bash
# Serves the same data with the bridge (local mount), `rclone serve webdav`
# and a plain x/net webdav.Dir handler, in one run, and prints a table of
# figures and ratios. Arguments go to the compare tool, e.g.
#   bash tests/bench/compare.sh -size 268435456 -files 2000
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in rclone wrk; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq rclone wrk >/dev/null
    break
  fi
done
bin=$(mktemp -d)/bridge
go build -o "$bin" .
go run ./tests/bench/compare -bridge "$bin" "$@"
