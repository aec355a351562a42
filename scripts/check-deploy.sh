#!/usr/bin/env bash
# Checks deploy/kubernetes offline, without a cluster:
#   1. every manifest against the Kubernetes API schemas (kubernetes-validate --strict, its
#      bundled schemas, for the oldest and the newest Kubernetes the manifests are meant for);
#   2. scripts/check-deploy.py: what the schemas cannot see — the ConfigMap's gateway.yaml
#      accepted by the real binary's check-config, ports, paths, selectors, Secrets, the drain
#      against Serve.swift, the image against the Dockerfile — and a smoke run of the manifests'
#      Redis command and the gateway serving that config on loopback (SIGTERM drain included).
# GATEWAY_BIN: the veeam-gateway binary (default: the release build's). redis-server is needed
# (scripts/install-deps.sh installs it).
set -euo pipefail
# A binary named relative to the caller's directory stays that binary after the cd below.
[ -n "${GATEWAY_BIN:-}" ] && GATEWAY_BIN=$(realpath "$GATEWAY_BIN")
cd "$(dirname "$0")/.."
GATEWAY_BIN="${GATEWAY_BIN:-$(swift build -c release --show-bin-path)/veeam-gateway}"
# The oldest Kubernetes still in wide use, and the newest whose schemas the package bundles.
K8S_VERSIONS=(1.30.0 1.37.0)

# Pinned: its bundled schemas are what "valid" means here.
python3 -m pip install -q 'kubernetes-validate==1.37.0' 2>/dev/null ||
  python3 -m pip install -q --break-system-packages 'kubernetes-validate==1.37.0'

echo "== Kubernetes manifests against the API schemas (strict: unknown fields are errors)"
manifests=()
for f in deploy/kubernetes/*.yaml; do
  # kustomization.yaml is kustomize's, not an API object; check-deploy.py checks its list.
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
versions=()
for v in "${K8S_VERSIONS[@]}"; do versions+=(-k "$v"); done
out="$(python3 -m kubernetes_validate --strict "${versions[@]}" "${manifests[@]}" 2>&1)" || { echo "$out"; exit 1; }
echo "$out"
# A kind without a schema is only a WARN there (exit 0): here it is a failure, as is anything else not INFO.
if echo "$out" | grep -v '^INFO ' | grep -q .; then
  echo "check-deploy: kubernetes-validate reported something other than a pass (above)" >&2
  exit 1
fi
passed=$(echo "$out" | grep -c '^INFO .* passed for resource ')
expected=$(( ${#manifests[@]} * ${#K8S_VERSIONS[@]} ))
if [ "$passed" -ne "$expected" ]; then
  echo "check-deploy: $passed resource validations passed, expected $expected (one resource per file, each against ${K8S_VERSIONS[*]})" >&2
  exit 1
fi
echo "${#manifests[@]} manifests valid against Kubernetes ${K8S_VERSIONS[*]}"

echo "== the manifests against the gateway, its Dockerfile and each other"
python3 scripts/check-deploy.py --gateway "$GATEWAY_BIN"
