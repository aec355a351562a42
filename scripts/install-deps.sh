#!/usr/bin/env bash
# Installs the system packages VeeamGateway needs on Debian/Ubuntu (Swift 6 itself is assumed).
# Idempotent: does nothing when everything is present.
set -euo pipefail
PACKAGES=(libcurl4-openssl-dev zlib1g-dev libhiredis-dev redis-server pkg-config ca-certificates curl python3 openssl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
pkg-config --exists libcurl || { echo "libcurl not found by pkg-config" >&2; exit 1; }
pkg-config --exists hiredis || { echo "hiredis not found by pkg-config" >&2; exit 1; }
command -v swift >/dev/null || { echo "Swift 6 is required: https://www.swift.org/install/linux/" >&2; exit 1; }
# The tests' webhook receiver (scripts/webhook-receiver.py) verifies signatures with the published
# Standard Webhooks library, not the gateway's code.
if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
  python3 -m pip install -q standardwebhooks 2>/dev/null || python3 -m pip install -q --break-system-packages standardwebhooks ||
    { echo "could not install the Python package standardwebhooks (the webhook tests need it)" >&2; exit 1; }
fi
# The tests' OTLP receiver (scripts/otlp-receiver.py) decodes spans with the published
# OpenTelemetry protocol package, not the gateway's code.
if ! python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  python3 -m pip install -q opentelemetry-proto 2>/dev/null || python3 -m pip install -q --break-system-packages opentelemetry-proto ||
    { echo "could not install the Python package opentelemetry-proto (the tracing test needs it)" >&2; exit 1; }
fi
