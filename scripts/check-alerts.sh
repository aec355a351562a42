#!/usr/bin/env bash
# Checks deploy/prometheus/alerts.yaml offline:
#   1. promtool check rules (syntax, PromQL, templates) and promtool test rules (alerts.test.yaml);
#   2. scripts/check-alerts.py: every metric and label the rules use is one the gateway exports
#      (read from Sources/), every alert has a test where it fires and one where it stays quiet
#      after its `for:`, breaking any rule (never firing, always firing) fails the tests, the
#      annotations name the upstream where the alert has one, and docs/operations.md lists each.
# promtool comes from Debian's prometheus package, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q prometheus
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml 2>/dev/null ||
  python3 -m pip install -q --break-system-packages pyyaml
promtool --version | head -1

echo "== promtool check rules"
promtool check rules deploy/prometheus/alerts.yaml
echo "== promtool test rules"
promtool test rules deploy/prometheus/alerts.test.yaml
echo "== the rules against the gateway's metrics, the tests and the docs"
python3 scripts/check-alerts.py
