#!/usr/bin/env bash
# Release build of veeam-gateway into OUT (default ./dist): the binary and its resource bundle.
# The Dockerfile's build stage and CI run this same script.
set -euo pipefail
OUT=${1:-dist}
swift build -c release --static-swift-stdlib --product veeam-gateway
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)
mkdir -p "$OUT"
cp "$BIN/veeam-gateway" "$OUT/"
cp -R "$BIN"/VeeamGateway_GatewayHTTP.resources "$OUT/"
"$OUT/veeam-gateway" version
