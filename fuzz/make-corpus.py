#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/) from the tests' own inputs.

    python3 fuzz/make-corpus.py            # from the repository root or anywhere

- FuzzRawRequest: the HTTP/1 streams of Tests/EndToEndTests/HotPathTests.swift (hostile framing,
  pipelining, the reason-phrase requests), each also followed by a plain hit as the tests pipeline
  them, plus the head bounds the tests build (101 fields, a 16 KiB field, a 32 KiB head).
- FuzzConfig: config/*.yaml and the YAML of Tests/GatewayConfigTests/ConfigTests.swift (the
  fixture config with each broken line, the caller and whole-document error cases), with the
  fixture directory rewritten to the one the target creates (/tmp/veeam-gateway-fuzz).
- FuzzUpstreamBodies: the seed examples (Sources/GatewayTestSupport/SeedExamples.swift), the
  bodies and timestamps of Tests/VeeamAPITests/WireModelTests.swift, the simulator fixtures
  (config/simulator/*.json) as the bodies each route answers, and one instance of each wire
  schema the gateway decodes, built from ../shared/upstream-specs (its examples where given).
- Every target: the inputs that once failed it (fuzz/crashes/<target>/), as regression-<name>.

The corpus is rewritten from scratch each run; the file names say where each seed came from.
"""

import hashlib
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
SPECS = os.path.join(os.path.dirname(ROOT), "shared", "upstream-specs")
FIXTURES = "/tmp/veeam-gateway-fuzz"  # FuzzConfig creates secret, short-secret and ca.pem here


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


# --- Swift string literals -------------------------------------------------------------------

def swift_literals(text):
    """The "…" literals (not raw, not multi-line) of `text`, with their interpolations as
    ("interp", expr) parts: [[("text", s) | ("interp", expr), …], …]."""
    literals = []
    i = 0
    while i < len(text):
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            i = len(text) if end < 0 else end + 3
            continue
        if text[i] == '#' and text.startswith('#"', i):
            end = text.find('"#', i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        if text[i] != '"':
            i += 1
            continue
        parts, buf, i = [], [], i + 1
        while i < len(text) and text[i] != '"':
            c = text[i]
            if c == "\\":
                n = text[i + 1]
                if n == "(":
                    depth, j = 1, i + 2
                    while depth:
                        if text[j] == "(":
                            depth += 1
                        elif text[j] == ")":
                            depth -= 1
                        elif text[j] == '"':  # a literal inside the interpolation
                            j = text.index('"', j + 1)
                        j += 1
                    parts.append(("text", "".join(buf)))
                    buf = []
                    parts.append(("interp", text[i + 2:j - 1]))
                    i = j
                    continue
                if n == "u":
                    close = text.index("}", i)
                    buf.append(chr(int(text[i + 3:close], 16)))
                    i = close + 1
                    continue
                buf.append({"r": "\r", "n": "\n", "t": "\t", "0": "\0", '"': '"', "\\": "\\", "'": "'"}[n])
                i += 2
                continue
            buf.append(c)
            i += 1
        parts.append(("text", "".join(buf)))
        literals.append(parts)
        i += 1
    return literals


def render(parts, values):
    out = []
    for kind, value in parts:
        if kind == "text":
            out.append(value)
            continue
        expr = value.strip()
        m = re.fullmatch(r'String\(repeating: "(.)", count: (\d+)\)', expr)
        if m:
            out.append(m.group(1) * int(m.group(2)))
        elif expr in values:
            out.append(values[expr])
        else:
            raise KeyError(expr)
    return "".join(out)


# --- Writing ---------------------------------------------------------------------------------

written = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    digest = hashlib.sha1(data).hexdigest()
    if digest in written.setdefault(target, set()):
        return
    written[target].add(digest)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60]
    directory = os.path.join(OUT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{name}-{digest[:8]}"), "wb") as f:
        f.write(data)


# --- FuzzRawRequest --------------------------------------------------------------------------

def raw_request_seeds():
    harness = read("Tests/EndToEndTests/GatewayHarness.swift")
    keys = dict(re.findall(r'static let (\w+) = "([^"]*)"', harness.split("static let callers")[0]))
    auth = read("Tests/EndToEndTests/AuthTests.swift")
    paths = dict(re.findall(r'^let (\w+Path) = "([^"]*)"', auth, re.M))
    text = read("Tests/EndToEndTests/HotPathTests.swift")
    values = {f"TestKeys.{k}": v for k, v in keys.items()}
    values.update(paths)
    values.update({
        "Self.otherTenantPath": re.search(r'otherTenantPath = "([^"]*)"', text).group(1),
        "key": keys["portalAdmin"], "$0": keys["portalAdmin"], "path": paths["cloudTenantPath"], "id": "r1", "index": "7",
    })
    form = f"grant_type=client_credentials&client_id=portal-admin&client_secret={keys['portalAdmin']}"
    values["form"] = form
    values["form.utf8.count"] = str(len(form))
    values["String(form.utf8.count, radix: 16)"] = format(len(form), "x")
    hit = f"GET {paths['cloudTenantPath']} HTTP/1.1\r\nHost: x\r\nX-API-Key: {keys['portalAdmin']}\r\n\r\n"
    count = 0
    for line in text.splitlines():
        if "HTTP/1." not in line:
            continue
        label = re.match(r'\s*\("([^"]+)"', line)
        for parts in swift_literals(line):
            if not any(kind == "text" and "HTTP/1." in value for kind, value in parts) or parts[0][1].startswith("HTTP/"):
                continue  # not a request (a status line the test expects)
            try:
                head = render(parts, values)
            except KeyError as error:
                print(f"make-corpus: HotPathTests: unknown interpolation {error}, literal skipped", file=sys.stderr)
                continue
            name = "hotpath-" + (label.group(1) if label else head.split("\r\n")[0])
            seed("FuzzRawRequest", name, head)
            if "\r\n\r\n" not in head and "\n\n" not in head:  # a head's start (a helper, a stalled head): also whole
                seed("FuzzRawRequest", name + "-whole", head + "X-API-Key: " + keys["portalAdmin"] + "\r\n\r\n")
            if '" + hit' in line or "+ hit" in line:
                seed("FuzzRawRequest", name + "-then-hit", head + hit)
            count += 1
    # Pipelined hits, misses, a POST with a body and a chunked request (pipelinedOrder).
    post = f"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: r4\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n\r\n{form}"
    chunked = f"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: c1\r\nTransfer-Encoding: chunked\r\n\r\n{len(form):x}\r\n{form}\r\n0\r\n\r\n"
    gets = "".join(f"GET {p} HTTP/1.1\r\nHost: x\r\nX-API-Key: {keys['portalAdmin']}\r\nX-Request-Id: p{i}\r\n\r\n"
                   for i, p in enumerate([paths["cloudTenantPath"], paths["organizationPath"], "/v1/tenants?q=alpha&limit=2"]))
    seed("FuzzRawRequest", "pipelined-order", gets + post + hit + chunked + hit)
    seed("FuzzRawRequest", "list-with-query-and-headers",
         f"GET /v1/tenants?kind=cloudTenant&q=Al HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc.def.ghi\r\nIf-None-Match: \"e1\"\r\n"
         f"Cache-Control: no-cache\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n")
    # The head bounds (boundedHead, trickledHeadLinear): just past each.
    def bounded(fields, field_bytes):
        filler = "".join(f"X-F{i}:" + "a" * max(1, field_bytes - len(f"X-F{i}:")) + "\r\n" for i in range(fields))
        return f"GET {paths['cloudTenantPath']} HTTP/1.1\r\nHost: x\r\nX-API-Key: {keys['portalAdmin']}\r\n" + filler + "\r\n"
    seed("FuzzRawRequest", "bounds-101-fields", bounded(99, 8))
    seed("FuzzRawRequest", "bounds-field-over-16KiB", bounded(1, 16 * 1024 + 1))
    head = f"GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-API-Key: {keys['portalAdmin']}\r\n"
    while len(head) < 32 * 1024 + 10:
        head += "X-Filler: " + "a" * 1000 + "\r\n"
    seed("FuzzRawRequest", "bounds-head-over-32KiB", head + "\r\n")
    return count


# --- FuzzConfig ------------------------------------------------------------------------------

def test_blocks(text):
    """(function name, its @Test(...) text) for each test of a Swift Testing suite."""
    blocks = []
    for m in re.finditer(r"@Test\((.*?)\)\s*\n\s*func (\w+)\(", text, re.S):
        blocks.append((m.group(2), m.group(1)))
    return blocks


def config_seeds():
    secret, ca = FIXTURES + "/secret", FIXTURES + "/ca.pem"
    for name in ["gateway.yaml", "demo.yaml"]:
        yaml = (read("config/" + name)
                .replace("/etc/veeam-gateway/vb365-eu-ca.pem", ca)
                .replace("/run/secrets/vb365-contoso-password", secret)
                .replace("/run/secrets/vspc-password", secret)
                .replace("/run/secrets/shared-key", secret))
        seed("FuzzConfig", "config-" + name, yaml)
    text = read("Tests/GatewayConfigTests/ConfigTests.swift")
    # ConfigFixture.yaml(_:vspcAccount:): the minimal valid config, one line appended to the vb365 upstream.
    fixture = re.search(r'func yaml\(.*?\n\s*"""\n(.*?)\n\s*"""', text, re.S).group(1)
    indent = min(len(l) - len(l.lstrip()) for l in fixture.splitlines() if l.strip())
    fixture = "\n".join(l[indent:] for l in fixture.splitlines())
    fixture = fixture.replace('\\(vspcAccount ?? "{ file: \\(directory)/secret }")', "{ file: " + secret + " }").replace("\\(directory)", FIXTURES)

    def with_extra(extra):
        return fixture.replace("\\(upstreamExtra)\n", extra)

    seed("FuzzConfig", "fixture-valid", with_extra(""))
    for function, arguments in test_blocks(text):
        for line in arguments.splitlines():
            if not line.strip().startswith('("'):
                continue
            first = render(swift_literals(line)[0], {})
            if function == "errors":
                seed("FuzzConfig", "fixture-" + first.strip(), with_extra(first))
            elif function == "callerErrors":
                seed("FuzzConfig", "callers-" + first.split("\n")[0],
                     first + "\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }")
            elif function == "documentErrors":
                seed("FuzzConfig", "document-" + first.split("\n")[0], first)
    for m in re.finditer(r'let yaml = """\n(.*?)\n\s*"""', text, re.S):
        block = m.group(1)
        indent = min(len(l) - len(l.lstrip()) for l in block.splitlines() if l.strip())
        seed("FuzzConfig", "versions", "\n".join(l[indent:] for l in block.splitlines()))
    for parts in swift_literals(text):
        try:
            value = render(parts, {})
        except KeyError:
            continue
        if value.startswith(("log:", "upstreams:", "listen:")) and "upstreams" in value:
            seed("FuzzConfig", "inline-" + value.split("\n")[0], value)
    # The end-to-end harness's shape (gatewayYAML): callers with key hashes and rate limits, an
    # identity provider, the shared tier, a vspc TLS pin.
    seed("FuzzConfig", "harness-shape", f"""listen: {{ host: 127.0.0.1, port: 0, hotPath: true, trustedProxies: [10.0.0.0/8, "2001:db8::/32"] }}
log: {{ level: debug, format: json }}
limits: {{ failedAuthPerMinute: 5, requestsPerSecond: 50, burst: 100 }}
auth:
  tokens: {{ signingKey: {{ env: GATEWAY_TOKEN_KEY }}, lifetime: 5m }}
  idp: {{ issuer: 'https://idp.test', audience: veeam-gateway, jwksURL: 'https://idp.test/jwks', rolesClaim: roles, scopesClaim: veeam_scopes, minimumRefreshInterval: 0s }}
cache: {{ maxBytes: 8MiB, maxEntryShare: 0.25, ttl: 30s, list: {{ ttl: 1m }} }}
shared: {{ redis: {{ url: 'redis://cache:6379/2', keyPrefix: 'gw:', timeout: 50ms, heartbeat: 5s, password: {{ env: REDIS_PASSWORD }}, encryptionKey: {{ env: VGW_TEST_SHARED_KEY }} }} }}
metrics: {{ requireCaller: true, listen: {{ host: 127.0.0.1, port: 9100 }} }}
health: {{ probeInterval: 10s }}
callers:
  - id: portal-admin
    keyHash: "sha256:{'0' * 64}"
    roles: [PortalAdministrator]
  - id: abc-app
    keyHash: "sha256:{'1' * 64}"
    roles: []
    scopes: ["vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"]
    rateLimit: {{ requestsPerSecond: 0.01, burst: 3 }}
upstreams:
  - name: vb365-eu
    product: vb365
    baseURL: https://vb365.example:4443
    apiVersion: v8
    tls: {{ caFile: {ca} }}
    timeouts: {{ connect: 1s, total: 10s }}
    organizations:
      - {{ username: backup-admin@abc.onmicrosoft.com, password: {{ file: {secret} }} }}
  - name: vspc-main
    product: vspc
    baseURL: https://vspc.example:1280
    clientVersion: 3.6.1
    tls: {{ pinnedPublicKey: "sha256//{'A' * 43}=" }}
    maxConcurrentRequests: 8
    account: {{ username: gateway-svc, password: {{ env: E2E_VSPC_PASSWORD }} }}
""")


# --- FuzzUpstreamBodies ----------------------------------------------------------------------

def raw_literals(text):
    return re.findall(r'#"(.*?)"#', text)


def instance(schema, definitions, depth=0):
    """One value of `schema`: its example when there is one, else a plain value of its type.
    The VSPC extract writes some schemas as shorthand text ("string|null", "UserRole")."""
    if isinstance(schema, str):
        word = schema.split()[0].split("|")[0] if schema.strip() else ""
        if word in definitions and depth < 4:
            return instance(definitions[word], definitions, depth + 1)
        return {"integer": 1, "number": 1.5, "boolean": True}.get(word, "text")
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return instance(definitions.get(name, {}), definitions, depth + 1) if depth < 4 else None
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            merged = {}
            for part in schema[combined]:
                value = instance(part, definitions, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
                elif value is not None:
                    return value
            return merged
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: instance(v, definitions, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema.get("items", {}), definitions, depth + 1)] if depth < 4 else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        return {"date-time": "2020-05-29T10:29:05.5413083Z", "uuid": "c386d34c-0ab6-4e13-b30a-67fcb05b83e4"}.get(schema.get("format"), "text")
    return None


def body_seeds():
    for literal in raw_literals(read("Sources/GatewayTestSupport/SeedExamples.swift")):
        seed("FuzzUpstreamBodies", "seed-example", literal)
    wire = read("Tests/VeeamAPITests/WireModelTests.swift")
    for literal in raw_literals(wire):
        seed("FuzzUpstreamBodies", "wiremodel", literal.replace("RA", "5"))
    for parts in swift_literals(wire.split("@Suite(\"Wire models\")")[0]):
        value = render(parts, {})
        if re.match(r"\d{4}-", value):
            seed("FuzzUpstreamBodies", "timestamp", value)
    seed("FuzzUpstreamBodies", "body-not-json", "not json at all")
    vb365 = json.loads(read("config/simulator/vb365.json"))
    orgs = [o["organization"] for o in vb365["organizations"]]
    for org in orgs:
        seed("FuzzUpstreamBodies", "sim-vb365-organization", json.dumps(org))
    summaries = [{k: o.get(k) for k in ("id", "name", "type", "region")} for o in orgs]
    seed("FuzzUpstreamBodies", "sim-vb365-organizations", json.dumps(summaries))
    seed("FuzzUpstreamBodies", "sim-vb365-organizations-page", json.dumps({"offset": 0, "limit": 1000, "results": summaries, "setId": "00000000-0000-0000-0000-000000000000"}))
    vspc = json.loads(read("config/simulator/vspc.json"))
    tenants = vspc.get("tenants", [])
    for tenant in tenants[:4]:
        seed("FuzzUpstreamBodies", "sim-vspc-tenant", json.dumps({"data": tenant}))
    seed("FuzzUpstreamBodies", "sim-vspc-tenants", json.dumps({"data": tenants[:3], "meta": {"pagingInfo": {"total": len(tenants), "count": min(3, len(tenants)), "offset": 0}}}))
    for user in vspc.get("users", [])[:2]:
        seed("FuzzUpstreamBodies", "sim-vspc-user", json.dumps({"data": {k: v for k, v in user.items() if k != "password"}}))
    # A tenant as the gateway stores it in the shared cache (Tenant's Codable form).
    seed("FuzzUpstreamBodies", "stored-tenant", json.dumps({
        "backup": {"firstBackupAt": None, "lastBackupAt": None, "protected": None}, "description": "Alpha Tenant",
        "details": {"gatewayPoolsUids": ["e1135752-d497-43e0-8857-8a0c3a262e2e"], "isGatewayFailoverEnabled": False, "maxConcurrentTask": 1, "siteUid": None},
        "enabled": True, "id": "vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "kind": "cloudTenant",
        "links": {"self": "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"}, "name": "Alpha",
        "source": {"id": "c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "product": "vspc", "upstream": "vspc-main"}, "type": "General"},
        separators=(",", ":"), sort_keys=True))
    # One instance of each schema the gateway decodes, from the specs.
    for spec, names in [
        ("vb365_rest_v8.json", ["RESTLoggedInOrganization", "RESTServiceInstance", "PageOfRestOrganizationComposed", "RESTExceptionInfo", "OAuthTokenResponse"]),
        ("vb365_rest_v6.json", ["RESTExceptionInfo", "OAuthTokenResponse"]),
        ("vspc_v3_relevant_extract.RECONSTRUCTED.json", ["OAuth2Error", "OAuth2Result", "ErrorResponse", "CloudTenant", "User"]),
    ]:
        path = os.path.join(SPECS, spec)
        if not os.path.exists(path):
            print(f"make-corpus: {path} missing, its schemas skipped", file=sys.stderr)
            continue
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        definitions = document.get("definitions") or document.get("components", {}).get("schemas", {})
        for name in names:
            if name not in definitions:
                print(f"make-corpus: {spec} has no {name}", file=sys.stderr)
                continue
            value = instance(definitions[name], definitions)
            if name in ("CloudTenant", "User"):
                value = {"data": value}
            seed("FuzzUpstreamBodies", f"spec-{spec.split('_')[0]}-{name}", json.dumps(value))


def regression_seeds():
    """Inputs that once failed a target (fuzz/crashes/<target>/), kept as seeds so that every run
    starts from them."""
    crashes = os.path.join(ROOT, "fuzz", "crashes")
    for target in sorted(os.listdir(crashes)) if os.path.isdir(crashes) else []:
        for name in sorted(os.listdir(os.path.join(crashes, target))):
            directory = os.path.join(OUT, target)
            os.makedirs(directory, exist_ok=True)
            shutil.copyfile(os.path.join(crashes, target, name), os.path.join(directory, "regression-" + name))
            written.setdefault(target, set())


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    raw_request_seeds()
    config_seeds()
    body_seeds()
    regression_seeds()
    total = 0
    for target in sorted(written):
        directory = os.path.join(OUT, target)
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
        total += size
        print(f"{target}: {len(os.listdir(directory))} seeds, {size} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
