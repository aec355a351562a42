#!/usr/bin/env python3
"""Checks deploy/kubernetes against the gateway itself, offline (scripts/check-deploy.sh runs it
after the schema validation).

What a schema cannot see and a person forgets:
- the ConfigMap's gateway.yaml is accepted by the real binary (`veeam-gateway check-config`),
  with dummy values for the secrets it names, and refused without them or with a typo;
- the container runs what the Dockerfile's image runs (entrypoint, arguments, user, port), and
  the config path it is given is where the ConfigMap is mounted;
- the probes, the Service, the Prometheus annotations and the NetworkPolicies use the port the
  config listens on; the NetworkPolicies' egress ports are the upstreams' baseURL ports and the
  Redis pod's port; Redis's Service is the host of shared.redis.url;
- selectors (Services, PDB, NetworkPolicies) pick the pods they are meant for and no others;
- every {env: NAME} of the config is set from a Secret, and docs/operations.md's commands
  create every Secret key the manifests read;
- terminationGracePeriodSeconds covers the preStop sleep and the shutdown bounds in
  Sources/veeam-gateway/Serve.swift; the hardening and resources are on every container;
- a smoke run on loopback: Redis started with the manifest's own command (password on standard
  input), its readiness probe command, and the gateway serving the ConfigMap's config against it
  (shared tier connected), then SIGTERM with a request in flight: new connections refused, the
  request answered, exit 0 within the grace period.
"""

import argparse
import http.client
import ipaddress
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"

from checklist import check, run  # noqa: E402  (scripts/checklist.py, beside this file)


# ---------------------------------------------------------------- loading


def load_manifests():
    objects = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects.append((path.name, doc))
    return objects


def dockerfile_facts():
    """ENTRYPOINT, CMD, EXPOSE, USER, ENV and the config file the image copies in."""
    text = (ROOT / "Dockerfile").read_text()
    # Join continuation lines, drop comments.
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append((current + raw).strip())
        current = ""
    facts = {"env": {}, "expose": []}
    runtime = False
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            runtime = " AS " not in rest.upper()  # the last stage is the unnamed runtime one
            facts["env"] = {} if runtime else facts["env"]
        if not runtime:
            continue
        if word == "ENTRYPOINT":
            facts["entrypoint"] = json.loads(rest)
        elif word == "CMD":
            facts["cmd"] = json.loads(rest)
        elif word == "EXPOSE":
            facts["expose"] += [int(p.split("/")[0]) for p in rest.split()]
        elif word == "USER":
            facts["user"] = rest.strip()
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                facts["env"][key] = value
        elif word == "COPY" and "config/gateway.yaml" in rest:
            facts["config_path"] = rest.split()[-1]
        elif word == "HEALTHCHECK":
            facts["healthcheck"] = rest
    return facts


def shutdown_bounds():
    """The drain bounds Serve.swift gives ServiceLifecycle, in seconds."""
    text = (ROOT / "Sources" / "veeam-gateway" / "Serve.swift").read_text()
    graceful = re.search(r"maximumGracefulShutdownDuration\s*=\s*\.seconds\((\d+)\)", text)
    cancellation = re.search(r"maximumCancellationDuration\s*=\s*\.seconds\((\d+)\)", text)
    check(graceful and cancellation, "Serve.swift states its graceful-shutdown and cancellation bounds in seconds",
          "the patterns maximumGracefulShutdownDuration = .seconds(N) / maximumCancellationDuration = .seconds(N) were not found")
    return (int(graceful.group(1)) if graceful else 0), (int(cancellation.group(1)) if cancellation else 0)


# ---------------------------------------------------------------- helpers


def selects(selector, labels):
    """Whether a label selector (matchLabels only) picks pods with `labels`."""
    if not selector:
        return True  # an empty selector picks every pod
    if selector.get("matchExpressions"):
        raise SystemExit("check-deploy.py: matchExpressions are not handled; use matchLabels")
    match = selector.get("matchLabels", selector)  # a Service's selector is a plain map
    return all(labels.get(k) == v for k, v in match.items())


def container_port(container, port):
    """A probe's or Service's port (number or name) as the container's port number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def secret_refs(obj):
    """Every {env: NAME} (and {file: PATH}) secret reference in the gateway config."""
    envs, files = [], []

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"} and isinstance(node["env"], str):
                envs.append(node["env"])
            elif set(node) == {"file"} and isinstance(node["file"], str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    return envs, files


def file_paths(obj, prefix=""):
    """Config keys that name files the gateway reads (…File), with their paths."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, str) and str(key).endswith("File"):
                found.append((path, value))
            else:
                found += file_paths(value, path)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += file_paths(value, f"{prefix}[{i}]")
    return found


def under_mount(path, container):
    return any(path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
               for m in container.get("volumeMounts", []))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------- the checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True, help="the veeam-gateway binary")
    parser.add_argument("--no-smoke", action="store_true", help="skip the loopback run of Redis and the gateway")
    args = parser.parse_args()
    binary = args.gateway
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise SystemExit(f"check-deploy.py: no executable gateway at {binary} (set GATEWAY_BIN)")

    objects = load_manifests()
    by_kind = {}
    for filename, obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    # ---- the kustomization lists exactly the manifests, all in its namespace
    kustomization = next(o for f, o in objects if o.get("kind") == "Kustomization")
    listed = set(kustomization.get("resources", []))
    present = {f for f, o in objects if o.get("kind") != "Kustomization"}
    check(listed == present, "kustomization.yaml lists every manifest in deploy/kubernetes and nothing else",
          f"listed only: {sorted(listed - present)}, not listed: {sorted(present - listed)}")
    namespace = kustomization.get("namespace")
    wrong_ns = [f"{o['kind']}/{o['metadata']['name']}" for f, o in objects
                if o.get("kind") not in ("Kustomization", "Namespace") and o["metadata"].get("namespace") != namespace]
    check(not wrong_ns, f"every object names the namespace {namespace}, as the kustomization does", f"{wrong_ns}")
    check(any(o["metadata"]["name"] == namespace for o in by_kind.get("Namespace", [])),
          f"the Namespace {namespace} is among the manifests")

    # ---- the gateway's Deployment, container and config
    image_name = kustomization["images"][0]["name"]
    gateway_deploy = next(d for d in by_kind["Deployment"]
                          if any(c["image"].split(":")[0] == image_name for c in d["spec"]["template"]["spec"]["containers"]))
    pod = gateway_deploy["spec"]["template"]
    gateway_labels = pod["metadata"]["labels"]
    gateway = next(c for c in pod["spec"]["containers"] if c["image"].split(":")[0] == image_name)
    check(selects(gateway_deploy["spec"]["selector"], gateway_labels), "the gateway Deployment's selector matches its pods")
    check(gateway_deploy["spec"].get("replicas") == 3, "three gateway replicas")

    docker = dockerfile_facts()
    check(gateway.get("command") == docker.get("entrypoint"), "the gateway container runs the Dockerfile's ENTRYPOINT",
          f"{gateway.get('command')} vs {docker.get('entrypoint')}")
    check(gateway.get("args") == docker.get("cmd"), "the gateway container's args are the Dockerfile's CMD (serve --config …)",
          f"{gateway.get('args')} vs {docker.get('cmd')}")
    run_as = gateway.get("securityContext", {}).get("runAsUser", pod["spec"].get("securityContext", {}).get("runAsUser"))
    check(str(run_as) == docker.get("user"), "the gateway runs as the Dockerfile's USER", f"{run_as} vs {docker.get('user')}")

    config_args = gateway.get("args", [])
    config_path = config_args[config_args.index("--config") + 1] if "--config" in config_args else None
    check(config_path == docker.get("config_path"), "the config path is where the Dockerfile puts the config",
          f"{config_path} vs {docker.get('config_path')}")
    config_dir, config_key = os.path.split(config_path or "")
    mount = next((m for m in gateway.get("volumeMounts", []) if m["mountPath"] == config_dir), None)
    volume = next((v for v in pod["spec"].get("volumes", []) if mount and v["name"] == mount["name"]), None)
    configmap_name = (volume or {}).get("configMap", {}).get("name")
    configmap = next((c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"] == configmap_name), None)
    check(configmap is not None and config_key in configmap.get("data", {}),
          f"{config_dir} is the ConfigMap {configmap_name} mounted, and it holds {config_key}")
    if configmap is None or config_key not in configmap.get("data", {}):
        return
    config_text = configmap["data"][config_key]
    config = yaml.safe_load(config_text)

    listen = config.get("listen", {})
    listen_port = int(listen.get("port", 8080))
    check(listen.get("host") == "0.0.0.0" or docker["env"].get("VEEAM_GATEWAY__LISTEN__HOST") == "0.0.0.0",
          "the gateway listens on every interface of the pod")
    ports = {p["containerPort"]: p for p in gateway.get("ports", [])}
    check(listen_port in ports, f"the container port is listen.port ({listen_port})", f"container ports {sorted(ports)}")
    check(listen_port in docker["expose"], f"listen.port ({listen_port}) is the Dockerfile's EXPOSE", f"{docker['expose']}")
    check(docker.get("healthcheck") and f":{listen_port}/healthz" in docker["healthcheck"],
          "the Dockerfile's HEALTHCHECK probes /healthz on the same port")

    for probe_name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        probe = gateway.get(probe_name, {}).get("httpGet", {})
        check(probe.get("path") == path, f"{probe_name} is GET {path}", f"{probe}")
        check(container_port(gateway, probe.get("port")) == listen_port, f"{probe_name} asks listen.port ({listen_port})",
              f"{probe.get('port')}")
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") == "true":
        metrics_port = config.get("metrics", {}).get("listen", {}).get("port", listen_port)
        check(annotations.get("prometheus.io/port") == str(metrics_port) and annotations.get("prometheus.io/path") == "/metrics",
              f"the Prometheus annotations name /metrics on port {metrics_port}")

    # ---- Services, PDB: selectors and ports
    redis_url = urlsplit(config.get("shared", {}).get("redis", {}).get("url", ""))
    check(redis_url.scheme == "redis", "the config uses the shared Redis tier (shared.redis.url)", f"{redis_url.geturl()}")
    services = by_kind.get("Service", [])
    redis_service = next((s for s in services if redis_url.hostname and
                          redis_url.hostname.split(".")[0] == s["metadata"]["name"]), None)
    check(redis_service is not None, f"shared.redis.url's host ({redis_url.hostname}) is a Service of the manifests")
    redis_host_parts = (redis_url.hostname or "").split(".")
    check(len(redis_host_parts) == 1 or redis_host_parts[1] == namespace,
          "shared.redis.url names the Redis Service in the gateway's namespace")
    redis_deploy = next((d for d in by_kind["Deployment"] if redis_service and
                         selects(redis_service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])), None)
    check(redis_deploy is not None and redis_deploy is not gateway_deploy, "the Redis Service selects the Redis Deployment's pods")
    if redis_deploy is None:
        return
    redis_pod = redis_deploy["spec"]["template"]
    redis_labels = redis_pod["metadata"]["labels"]
    redis = redis_pod["spec"]["containers"][0]
    check(not selects(redis_service["spec"]["selector"], gateway_labels), "the Redis Service does not select gateway pods")
    redis_service_port = next(iter(redis_service["spec"]["ports"]))
    redis_port = container_port(redis, redis_service_port.get("targetPort", redis_service_port["port"]))
    check((redis_url.port or 6379) == redis_service_port["port"],
          f"shared.redis.url's port is the Redis Service's ({redis_service_port['port']})", f"{redis_url.port}")
    check(redis_port is not None and redis_port in [p["containerPort"] for p in redis.get("ports", [])],
          f"the Redis Service targets the Redis container's port ({redis_port})")

    gateway_service = next((s for s in services if s is not redis_service), None)
    check(gateway_service and selects(gateway_service["spec"]["selector"], gateway_labels)
          and not selects(gateway_service["spec"]["selector"], redis_labels),
          "the gateway Service selects gateway pods only")
    if gateway_service:
        targets = [container_port(gateway, p.get("targetPort", p["port"])) for p in gateway_service["spec"]["ports"]]
        check(targets == [listen_port], f"the gateway Service targets listen.port ({listen_port})", f"{targets}")

    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(len(pdbs) == 1 and selects(pdbs[0]["spec"]["selector"], gateway_labels)
          and not selects(pdbs[0]["spec"]["selector"], redis_labels), "the PodDisruptionBudget selects gateway pods only")
    if pdbs:
        spec, replicas = pdbs[0]["spec"], gateway_deploy["spec"]["replicas"]
        kept = replicas - spec["maxUnavailable"] if "maxUnavailable" in spec else spec.get("minAvailable", 0)
        check(isinstance(kept, int) and 2 <= kept < replicas,
              "the PodDisruptionBudget keeps at least two replicas and lets one go", f"{spec}")

    # ---- NetworkPolicies
    policies = by_kind.get("NetworkPolicy", [])
    gateway_policies = [p for p in policies if selects(p["spec"]["podSelector"], gateway_labels)]
    redis_policies = [p for p in policies if selects(p["spec"]["podSelector"], redis_labels)]
    check(len(gateway_policies) == 1 and set(gateway_policies[0]["spec"].get("policyTypes", [])) == {"Ingress", "Egress"},
          "one NetworkPolicy governs the gateway pods, for ingress and egress")
    check(len(redis_policies) == 1 and set(redis_policies[0]["spec"].get("policyTypes", [])) == {"Ingress", "Egress"},
          "one NetworkPolicy governs the Redis pods, for ingress and egress")
    if len(gateway_policies) == 1 and len(redis_policies) == 1:
        check_network_policies(gateway_policies[0], redis_policies[0], config, listen_port, redis_port,
                               gateway, redis, gateway_labels, redis_labels)

    # ---- secrets: every {env:} set from a Secret, every Secret key created by the docs
    envs, files = secret_refs(config)
    gateway_env = {e["name"]: e for e in gateway.get("env", [])}
    missing = [name for name in envs if name not in gateway_env]
    check(not missing, f"every {{env: NAME}} of the config is set in the gateway container ({', '.join(envs)})", f"missing {missing}")
    not_secret = [name for name in envs if name in gateway_env and "secretKeyRef" not in gateway_env[name].get("valueFrom", {})]
    check(not not_secret, "each of them comes from a Secret (secretKeyRef), never a value in a manifest", f"{not_secret}")
    for path in files:
        check(under_mount(path, gateway), f"the secret file {path} is on a volume the gateway container mounts")
    for key, path in file_paths(config):
        check(under_mount(path, gateway), f"{key} ({path}) is on a volume the gateway container mounts")
    redis_password_env = config["shared"]["redis"].get("password", {}).get("env")
    redis_env = {e["name"]: e for e in redis.get("env", [])}
    if redis_password_env:
        gateway_ref = gateway_env.get(redis_password_env, {}).get("valueFrom", {}).get("secretKeyRef")
        redis_ref = redis_env.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
        check(gateway_ref and gateway_ref == redis_ref, "the gateway's Redis password is the Secret key Redis is started with",
              f"{gateway_ref} vs {redis_ref}")
    check_docs_create_secrets(objects)

    # ---- shutdown and hardening
    graceful, cancellation = shutdown_bounds()
    pre_stop = gateway.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        sleep_seconds = int(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop.get("exec", {}).get("command", [])
        sleep_seconds = int(command[1]) if len(command) == 2 and command[0].endswith("sleep") else 0
    check(sleep_seconds >= 5, f"a preStop sleep ({sleep_seconds} s) lets endpoints drop the pod before SIGTERM")
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(grace >= sleep_seconds + graceful + cancellation,
          f"terminationGracePeriodSeconds ({grace}) covers preStop {sleep_seconds} s + drain {graceful} s + cancellation {cancellation} s")
    for deploy in (gateway_deploy, redis_deploy):
        check_hardening(deploy)

    # ---- the config against the real binary
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as work:
        config_file = Path(work) / config_key
        config_file.write_text(config_text)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("VEEAM_GATEWAY__")}
        base_env.update(docker["env"])
        base_env.update({e["name"]: e["value"] for e in gateway.get("env", []) if "value" in e})
        dummies = {name: secrets.token_hex(24) for name in envs}  # 48 characters: enough for any key

        result = subprocess.run([binary, "check-config", str(config_file)], env={**base_env, **dummies},
                                capture_output=True, text=True, timeout=60)
        check(result.returncode == 0 and ": ok" in result.stdout,
              "veeam-gateway check-config accepts the ConfigMap's gateway.yaml (secrets set to dummies)",
              (result.stdout + result.stderr).strip())
        print("     " + result.stdout.strip().replace("\n", "\n     "))
        if envs:
            result = subprocess.run([binary, "check-config", str(config_file)], env=base_env, capture_output=True, text=True, timeout=60)
            check(result.returncode == 1 and envs[0] in result.stderr,
                  f"without its secrets the same config is refused, naming {envs[0]}", (result.stdout + result.stderr).strip())
        broken = Path(work) / "typo.yaml"
        broken.write_text(config_text.replace("listen:\n", "listen:\n  hots: 0.0.0.0\n", 1))
        result = subprocess.run([binary, "check-config", str(broken)], env={**base_env, **dummies}, capture_output=True, text=True, timeout=60)
        check(result.returncode == 1 and "hots" in result.stderr, "a typo in it is refused (check-config really validates)",
              (result.stdout + result.stderr).strip())

        if not args.no_smoke:
            smoke(binary, work, config_file, config, gateway, redis, base_env, dummies, redis_password_env, grace - sleep_seconds)


def check_network_policies(gateway_policy, redis_policy, config, listen_port, redis_port, gateway, redis, gateway_labels, redis_labels):
    spec = gateway_policy["spec"]

    def rule_ports(rule, container=None):
        ports = set()
        for p in rule.get("ports", []):
            port = p.get("port")
            if isinstance(port, str) and container is not None:
                port = container_port(container, port)
            ports.add((p.get("protocol", "TCP"), port))
        return ports

    ingress_ok = any(not rule.get("ports") or ("TCP", listen_port) in rule_ports(rule, gateway) for rule in spec.get("ingress", []))
    check(ingress_ok, f"the gateway's NetworkPolicy admits callers on listen.port ({listen_port})")

    egress = spec.get("egress", [])
    check(all(rule.get("to") for rule in egress), "every egress rule of the gateway names its destinations (none allows everywhere)")
    to_redis = [rule for rule in egress
                if any("podSelector" in peer and "namespaceSelector" not in peer and "ipBlock" not in peer
                       and selects(peer["podSelector"], redis_labels) for peer in rule.get("to", []))]
    check(any(("TCP", redis_port) in rule_ports(rule, redis) for rule in to_redis),
          f"the gateway may reach the Redis pods on their port ({redis_port}, the pod's, not the Service's)")
    dns = [rule for rule in egress
           if any(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "kube-system"
                  and peer.get("podSelector", {}).get("matchLabels", {}).get("k8s-app") == "kube-dns" for peer in rule.get("to", []))]
    check(any({("UDP", 53), ("TCP", 53)} <= rule_ports(rule) for rule in dns), "the gateway may reach kube-dns on 53 UDP and TCP")

    upstream_ports = {}
    for upstream in config.get("upstreams", []):
        url = urlsplit(upstream["baseURL"])
        upstream_ports.setdefault(url.port or 443, []).append(upstream["name"])
    ip_rules = [rule for rule in egress if rule.get("to") and all("ipBlock" in peer for peer in rule["to"])]
    ip_ports = set()
    for rule in ip_rules:
        ip_ports |= {port for proto, port in rule_ports(rule) if proto == "TCP"}
        for peer in rule["to"]:
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
            check(network.prefixlen > 0, f"egress ipBlock {network} is not the whole Internet")
            if any(network.subnet_of(doc) for doc in map(ipaddress.ip_network, ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
                   if network.version == 4):
                print(f"note {network} is a documentation address: set the Veeam servers' CIDRs before applying (docs/operations.md)")
    for port, names in sorted(upstream_ports.items()):
        check(port in ip_ports, f"the gateway may reach port {port} of ipBlock CIDRs (upstreams {', '.join(names)})",
              f"ipBlock ports {sorted(ip_ports)}")
    stale = ip_ports - set(upstream_ports)
    check(not stale, "no ipBlock egress port is left that no upstream's baseURL uses", f"{sorted(stale)}")
    covered = {("TCP", redis_port), ("UDP", 53), ("TCP", 53)} | {("TCP", p) for p in upstream_ports}
    extra = set().union(*[rule_ports(rule, redis) for rule in egress]) - covered if egress else set()
    check(not extra, "the gateway's egress is Redis, DNS and the upstreams only", f"also {sorted(extra)}")

    rspec = redis_policy["spec"]
    check(not selects(rspec["podSelector"], gateway_labels), "the Redis NetworkPolicy does not govern gateway pods")
    ingress = rspec.get("ingress", [])
    only_gateway = all(rule.get("from") and all(
        set(peer) == {"podSelector"} and selects(peer["podSelector"], gateway_labels) and not selects(peer["podSelector"], redis_labels)
        for peer in rule["from"]) for rule in ingress)
    check(ingress and only_gateway, "Redis admits the gateway pods only")
    check(all(rule_ports(rule, redis) == {("TCP", redis_port)} for rule in ingress), f"…on the Redis port ({redis_port}) only")
    check(rspec.get("egress", []) == [], "Redis may connect nowhere")


def check_docs_create_secrets(objects):
    """Each Secret key a manifest reads is created by a `kubectl create secret generic` in the docs' Kubernetes section."""
    refs = set()
    for _, obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = re.search(r"^## Kubernetes\n(.*?)(?=^## |\Z)", docs, re.S | re.M)
    check(section is not None, "docs/operations.md has a section \"## Kubernetes\"")
    if section is None:
        return
    commands = {}
    for match in re.finditer(r"create secret generic ([a-z0-9-]+)((?:[^\n]*\\\n)*[^\n]*)", section.group(1)):
        commands[match.group(1)] = match.group(2)
    for name, key in sorted(refs):
        created = name in commands and re.search(rf"--from-(literal|file)={re.escape(key)}=", commands[name])
        check(created, f"the docs create Secret {name} with key {key}")


def check_hardening(deploy):
    name = deploy["metadata"]["name"]
    pod = deploy["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    check(pod.get("automountServiceAccountToken") is False, f"{name}: no service account token is mounted")
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext", {})
        what = f"{name}/{container['name']}"
        check(sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, f"{what}: runAsNonRoot")
        check(sc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation false")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"),
              f"{what}: every capability dropped, none added")
        seccomp = sc.get("seccompProfile", pod_security.get("seccompProfile", {}))
        check(seccomp.get("type") == "RuntimeDefault", f"{what}: seccompProfile RuntimeDefault")
        resources = container.get("resources", {})
        complete = all(resources.get(kind, {}).get(r) for kind in ("requests", "limits") for r in ("cpu", "memory"))
        check(complete, f"{what}: cpu and memory requests and limits")
        if complete:
            check(quantity(resources["limits"]["memory"]) >= quantity(resources["requests"]["memory"])
                  and quantity(resources["limits"]["cpu"]) >= quantity(resources["requests"]["cpu"]),
                  f"{what}: limits at least the requests")


def quantity(text):
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    return float(match.group(1)) * units.get(match.group(2), 1)


# ---------------------------------------------------------------- the smoke run


def black_hole(port, stop):
    """A TCP listener on loopback that accepts and never answers: an upstream whose TLS
    handshake never completes, so a request to it stays in flight until its connect timeout."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    server.settimeout(0.2)
    held = []
    while not stop.is_set():
        try:
            held.append(server.accept()[0])
        except socket.timeout:
            pass
    for conn in held:
        conn.close()
    server.close()


def smoke(binary, work, config_file, config, gateway, redis, base_env, dummies, redis_password_env, drain_budget):
    """Redis as the manifest starts it, the gateway as the manifest starts it, on loopback."""
    redis_port, gateway_port, hole_port = free_port(), free_port(), free_port()
    password = secrets.token_hex(32)
    processes = []
    stop = threading.Event()
    hole = threading.Thread(target=black_hole, args=(hole_port, stop), daemon=True)
    hole.start()
    try:
        # Redis: the manifest's shell script, told to stay on loopback and on a free port.
        script = redis.get("args", [""])[0]
        check(redis.get("command") == ["sh", "-c"] and "redis-server -" in script,
              "Redis is started by a shell script that gives redis-server its config on standard input")
        # Only the lines fed to standard input may hold the password, never redis-server's
        # arguments (Redis rewrites its process title, so /proc would not show a leak).
        server_line = next((line for line in script.splitlines() if "redis-server" in line), "")
        check("REDIS_PASSWORD" in script and "REDIS_PASSWORD" not in server_line,
              "the Redis password is fed on standard input, not on redis-server's command line", server_line)
        local = script.replace("redis-server -", f"redis-server - --port {redis_port} --bind 127.0.0.1", 1)
        redis_env = {**os.environ, "REDIS_PASSWORD": password}
        redis_log = open(Path(work) / "redis.log", "w")
        processes.append(subprocess.Popen(["sh", "-c", local], env=redis_env, cwd=work, stdout=redis_log, stderr=subprocess.STDOUT))
        probe = redis["readinessProbe"]["exec"]["command"]
        local_probe = [part.replace("redis-cli -h 127.0.0.1", f"redis-cli -h 127.0.0.1 -p {redis_port}") for part in probe]
        ready = False
        for _ in range(50):
            if subprocess.run(local_probe, env={**os.environ, "REDISCLI_AUTH": password}, capture_output=True).returncode == 0:
                ready = True
                break
            time.sleep(0.1)
        check(ready, "Redis, started by the manifest's command, passes the manifest's readiness probe")
        wrong = subprocess.run(local_probe, env={**os.environ, "REDISCLI_AUTH": "wrong"}, capture_output=True)
        check(wrong.returncode != 0, "the readiness probe fails with a wrong password (it looks for PONG)")
        # The policy the manifest sets, as Redis took it.
        policy = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis_port), "config", "get", "maxmemory-policy"],
                                env={**os.environ, "REDISCLI_AUTH": password}, capture_output=True, text=True).stdout.split()
        check(policy[-1:] == ["volatile-ttl"], "Redis evicts volatile-ttl (every key the gateway writes expires)", f"{policy}")

        # The gateway: the manifest's command with the config file at hand, on loopback.
        key = secrets.token_hex(16)
        key_hash = subprocess.run([binary, "hash-key"], input=key, capture_output=True, text=True).stdout.strip()
        env = {**base_env, **dummies,
               "VEEAM_GATEWAY__LISTEN__HOST": "127.0.0.1",
               "VEEAM_GATEWAY__LISTEN__PORT": str(gateway_port),
               "VEEAM_GATEWAY__SHARED__REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
               "VEEAM_GATEWAY__CALLERS__0__KEYHASH": key_hash}
        if redis_password_env:
            env[redis_password_env] = password
        for i, _ in enumerate(config.get("upstreams", [])):
            env[f"VEEAM_GATEWAY__UPSTREAMS__{i}__BASEURL"] = f"https://127.0.0.1:{hole_port}"
            env[f"VEEAM_GATEWAY__UPSTREAMS__{i}__TIMEOUTS__CONNECT"] = "3s"
            env[f"VEEAM_GATEWAY__UPSTREAMS__{i}__TIMEOUTS__TOTAL"] = "5s"
        # The image's binary is the one given here; the config path is the file at hand.
        config_arg = gateway["args"].index("--config") + 1
        argv = [binary] + gateway["command"][1:] + [str(config_file) if i == config_arg else a for i, a in enumerate(gateway["args"])]
        gateway_log = open(Path(work) / "gateway.log", "w")
        started = time.monotonic()
        process = subprocess.Popen(argv, env=env, cwd=work, stdout=gateway_log, stderr=subprocess.STDOUT)
        processes.append(process)
        live = None
        while time.monotonic() - started < 15 and process.poll() is None:
            try:
                live = http_get(gateway_port, gateway["livenessProbe"]["httpGet"]["path"], timeout=1)[0]
                break
            except OSError:
                time.sleep(0.05)
        check(live == 200, "the gateway serves the ConfigMap's config: the liveness probe answers 200", f"{live}")
        if live != 200:
            print((Path(work) / "gateway.log").read_text()[-3000:])
            return
        readiness = http_get(gateway_port, gateway["readinessProbe"]["httpGet"]["path"])[0]
        check(readiness in (200, 503), f"the readiness probe's path is served ({readiness}: the upstreams here are black holes)")

        # A request in flight (it waits on the black-holed upstreams), then SIGTERM.
        outcome = {}

        def in_flight():
            try:
                outcome["status"] = http_get(gateway_port, "/v1/tenants", {"X-API-Key": key}, timeout=30)[0]
            except OSError as error:
                outcome["error"] = repr(error)
            outcome["at"] = time.monotonic()

        caller = threading.Thread(target=in_flight)
        caller.start()
        time.sleep(0.3)
        metrics_text = http_get(gateway_port, "/metrics")[1]
        check((metric(metrics_text, "veeam_gateway_shared_tier_commands_total") or 0) > 0
              and metric(metrics_text, "veeam_gateway_shared_tier_failures_total") == 0
              and metric(metrics_text, 'veeam_gateway_shared_tier_state{state="closed"}') == 1,
              "the gateway talks to that Redis with the password (commands, no failure, circuit closed)",
              "\n".join(line for line in metrics_text.splitlines() if "shared_tier" in line and not line.startswith("#")))
        terminated = time.monotonic()
        process.send_signal(signal.SIGTERM)
        refused = False
        while time.monotonic() - terminated < 3:
            try:
                socket.create_connection(("127.0.0.1", gateway_port), timeout=0.5).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
                break
            except OSError:
                time.sleep(0.05)
        check(refused, "after SIGTERM new connections are refused at once (why the preStop sleep comes first)")
        try:
            code = process.wait(timeout=drain_budget)
        except subprocess.TimeoutExpired:
            code = None
        exited = time.monotonic()
        caller.join(timeout=30)
        check(code == 0, f"the gateway exits 0 after SIGTERM, {exited - terminated:.1f} s later (the pod allows {drain_budget} s)", f"{code}")
        check("status" in outcome and outcome["at"] > terminated,
              "the request in flight at SIGTERM was answered (drained, not cut)", f"{outcome}")
    finally:
        stop.set()
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    run(main, "check-deploy")
