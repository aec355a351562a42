#!/usr/bin/env python3
"""Chaos run against a running VeeamGateway and veeam-sim (scripts/chaos.sh starts both).

Client threads send ordinary and hostile requests while a fault thread changes the simulator every
few seconds and a monitor thread watches the gateway process. With an https gateway URL (the
default of chaos.sh: a self-signed certificate, `--gateway-ca`) about a third of the clients speak
HTTP/2 (the `h2` package, ALPN h2, one connection reused for sequential requests) and the rest
HTTP/1.1 keep-alive over TLS (ALPN http/1.1), each verifying the gateway's certificate; with an
http URL every client speaks plain HTTP/1.1. Every answer is checked the same way on both:
  - its status is listed in docs/openapi.yaml for the route and method (unknown paths answering
    404 and wrong methods answering 405 with the document's Allow are counted as informational:
    the document lists neither). HTTP/2 clients also send made-up methods (`:method` X1Y, get,
    random tokens), which HTTP/1's parser never lets through: they are wrong methods too;
  - errors are application/problem+json with the Problem schema's required members and `status`
    equal to the HTTP status (the /readyz 503 answers the Readiness object); 304 has no body;
    2xx bodies have the media type and required top-level members the document names;
  - nothing that must be refused (a bad credential, a role or scope that may not read it, an
    invalid id or parameter) is answered 2xx or 304, a list shows only what its caller may read,
    and a valid credential is never answered 401 (nor 403 where the role allows);
  - no body holds a secret (passwords, API keys, signing key, upstream tokens known so far).
Two hostile threads (`--stall-threads`, https only) open HTTP/2 connections that stall: 2-6
streams with HEADERS without END_STREAM (some with part of a promised body, some beside a
complete request that must still be answered) and then nothing, a header block whose
CONTINUATION never comes, one request and then silence (the server's PING unanswered), or no
stream at all; and, for comparison, their HTTP/1.1 twins (silent after a request, half a head,
half a body). The gateway must reset every stalled stream or close the connection within
--head-timeout + --idle-timeout + 4 s (kind "stall").
At the end the simulator's tokens are fetched again, and every kept body and the whole gateway
log are searched for every secret (and the log for the gateway tokens handed out); /metrics and
the access log must name no method but GET HEAD POST PUT DELETE PATCH OPTIONS TRACE CONNECT and
`other` (kind "metrics"): a made-up method must not become a series of its own.
The report counts answers by route, method, status and protocol.
Exit status: 0 when nothing was found, 1 on any violation, 2 on a usage error.
Standard library, PyYAML and (for HTTP/2) h2.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field

import yaml

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import hpack
except ImportError:  # plain-HTTP runs (CHAOS_TLS=0) do without
    h2 = None

HANG_SECONDS = 20  # a request without an answer within this is a hang
MAX_SHOWN = 20  # violations printed
KEEP_BODY_BYTES = 128 << 20  # distinct bodies kept for the final secret search
MIN_SECRET_LENGTH = 12  # shorter strings would match by chance
READERS = frozenset({"PortalAdministrator", "ServiceProviderGlobalAdministrator", "ServiceProviderAdministrator"})
ADMINS = frozenset({"PortalAdministrator"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
BASE_PROBLEM_MEMBERS = ("type", "title", "status", "code")
# Violation kinds, most serious first (the report shows them in this order, round-robin).
KINDS = ("process", "memory", "secret", "hang", "stall", "connection", "status", "body", "headers", "access", "metrics",
         "simulator", "chaos.py")
# The methods /metrics and the access log may name (GatewayCore's MethodLabel); anything else is `other`.
METHOD_LABELS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "other"})
STALL_MARGIN = 4  # seconds past head deadline + idle timeout for a stalled connection to be released
HTTP1, HTTP2 = "HTTP/1.1", "HTTP/2"


# ---------------------------------------------------------------------------------------------
# The OpenAPI document: statuses, media types and required members per route and method.


@dataclass(frozen=True)
class Spec:
    operations: dict  # (template, METHOD) -> {"200": (media types, required members)}
    templates: list  # (template, compiled pattern), literal paths first

    def template(self, target):
        """The path template a request target hits, as the router sees the path (empty
        segments dropped, as Hummingbird does), or None for a path the API does not have."""
        path = target.split("?", 1)[0].split("#", 1)[0]
        path = "/" + "/".join(part for part in path.split("/") if part)
        return next((t for t, pattern in self.templates if pattern.match(path)), None)

    def methods(self, template):
        return {m for t, m in self.operations if t == template}


def load_spec(path):
    doc = yaml.safe_load(open(path, encoding="utf-8"))

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    operations = {}
    for template, item in doc["paths"].items():
        for method, operation in item.items():
            if method.lower() not in HTTP_METHODS:
                continue
            answers = {}
            for status, response in (operation.get("responses") or {}).items():
                content = resolve(response).get("content") or {}
                required = set()
                for media in content.values():
                    required |= set(resolve(media.get("schema") or {}).get("required", ()))
                answers[str(status)] = (tuple(content), tuple(sorted(required)))
            operations[(template, method.upper())] = answers

    def pattern(template):
        # `{path}` (pass-through) spans segments; every other parameter is one segment.
        parts = [".+" if p == "{path}" else "[^/]+" if p.startswith("{") else re.escape(p) for p in template.split("/")]
        return re.compile("^" + "/".join(parts) + "$")

    ordered = sorted({t for t, _ in operations}, key=lambda t: ("{" in t, t))
    return Spec(operations, [(t, pattern(t)) for t in ordered])


# ---------------------------------------------------------------------------------------------
# Secrets: many strings found in one regex pass (a trie of the secrets compiled into a pattern).


class SecretMatcher:
    def __init__(self, secrets):
        """secrets: {value (str or bytes): label}; values shorter than MIN_SECRET_LENGTH are skipped."""
        self.labels = {}
        for value, label in secrets.items():
            raw = value.encode() if isinstance(value, str) else value
            if len(raw) >= MIN_SECRET_LENGTH:
                self.labels.setdefault(raw, label)
        self.pattern = self._compile(self.labels) if self.labels else None

    @staticmethod
    def _compile(words):
        trie = {}
        for word in words:
            node = trie
            for byte in word:
                node = node.setdefault(byte, {})
            node[None] = True

        def emit(node):
            if None in node:  # a whole secret ends here: matching it is enough
                return b""
            branches = [re.escape(bytes([b])) + emit(child) for b, child in sorted(node.items())]
            return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"

        return re.compile(emit(trie))

    def find(self, data):
        """(offset, label) of every secret in data (bytes)."""
        if self.pattern is None or not data:
            return []
        return [(m.start(), self.labels[m.group()]) for m in self.pattern.finditer(data)]

    def __len__(self):
        return len(self.labels)


# ---------------------------------------------------------------------------------------------
# What the threads share, behind one lock.


class Shared:
    def __init__(self, static_secrets):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = Counter()  # (route, method, status, protocol) -> answers
        self.notes = {}  # (route, method, status) -> informational note
        self.made_up = Counter()  # protocol -> answers to made-up methods
        self.goaway_retries = 0  # HTTP/2 requests sent again after a graceful GOAWAY (NO_ERROR) overtook them
        self.stalls = Counter()  # stall session kind -> sessions
        self.stall_streams = 0
        self.stall_seconds = {}  # stall session kind -> how long each took to be released
        self.violations = Counter()  # kind -> count
        self.messages = {}  # kind -> its first MAX_SHOWN distinct messages
        self.reported = set()  # (body digest, label): a leak reported once
        self.etags = {}  # request target -> last ETag
        self.jwts = {}  # caller id -> gateway token
        self.jwt_signatures = set()  # every gateway token's signature (searched for in the log)
        self.bodies = []  # (body, where): distinct bodies for the final search
        self.body_digests = set()
        self.body_bytes = 0
        self.bodies_not_kept = 0
        self.static_secrets = dict(static_secrets)
        self.tokens = {}  # upstream token -> label
        self.matcher = SecretMatcher(self.static_secrets)
        self.matcher_tokens = 0  # upstream tokens in the live matcher
        self.matcher_built = 0.0
        self.faults = Counter()  # simulator actions taken
        self.sim_errors = 0
        self.rss_mib = []  # samples
        self.rss_reported = False

    def violation(self, kind, message):
        with self.lock:
            self.violations[kind] += 1
            first = self.messages.setdefault(kind, [])
            if len(first) < MAX_SHOWN and message not in first:
                first.append(message)

    def shown(self):
        """At most MAX_SHOWN messages: the first of each kind in turn, most serious kinds first."""
        order = list(KINDS) + sorted(k for k in self.messages if k not in KINDS)
        picked = []
        for i in range(MAX_SHOWN):
            picked += [f"[{k}] {self.messages[k][i]}" for k in order if i < len(self.messages.get(k, []))]
        return picked[:MAX_SHOWN]

    def count(self, route, method, status, proto, note=None):
        with self.lock:
            self.counts[(route, method, status, proto)] += 1
            if note:
                self.notes[(route, method, status)] = note

    def keep_body(self, body, where):
        """Keeps a distinct body for the final search; returns its digest."""
        digest = hashlib.blake2b(body, digest_size=16).digest()
        with self.lock:
            if digest in self.body_digests:
                return digest
            if self.body_bytes + len(body) > KEEP_BODY_BYTES:
                self.bodies_not_kept += 1
                return digest
            self.body_digests.add(digest)
            self.bodies.append((body, where))
            self.body_bytes += len(body)
        return digest

    def first_report(self, digest, label):
        with self.lock:
            if (digest, label) in self.reported:
                return False
            self.reported.add((digest, label))
            return True

    def secret_matcher(self):
        with self.lock:
            return self.matcher

    def add_tokens(self, tokens, force=False):
        """Adds upstream tokens to the secrets searched for in later bodies (the live matcher is
        recompiled at most every 10 s, as compiling holds the GIL; `force` recompiles now)."""
        with self.lock:
            for token in tokens:
                if token not in self.tokens:
                    self.tokens[token] = f"upstream token #{len(self.tokens) + 1}"
            stale = len(self.tokens) != self.matcher_tokens
            due = force or time.monotonic() - self.matcher_built > 10
            secrets = {**self.static_secrets, **self.tokens} if stale and due else None
            count = len(self.tokens)
        if secrets:
            matcher = SecretMatcher(secrets)  # compiled outside the lock
            with self.lock:
                self.matcher, self.matcher_tokens, self.matcher_built = matcher, count, time.monotonic()

    def etag(self, target):
        with self.lock:
            return self.etags.get(target)

    def remember_etag(self, target, etag):
        with self.lock:
            if len(self.etags) > 4096:
                self.etags.clear()
            self.etags[target] = etag

    def jwt(self, caller_id):
        with self.lock:
            return self.jwts.get(caller_id)

    def remember_jwt(self, caller_id, token):
        with self.lock:
            self.jwts[caller_id] = token
            self.jwt_signatures.add(token.rsplit(".", 1)[-1])

    def forget_jwt(self, caller_id, token):
        with self.lock:
            if self.jwts.get(caller_id) == token:
                del self.jwts[caller_id]

    def fault(self, action, ok=True):
        with self.lock:
            self.faults[action] += 1
            if not ok:
                self.sim_errors += 1

    def sample_rss(self, mib, bound):
        with self.lock:
            self.rss_mib.append(mib)
            over = mib > bound and not self.rss_reported
            self.rss_reported |= over
        if over:
            self.violation("memory", f"gateway RSS {mib:.1f} MiB is past the bound of {bound:g} MiB")


# ---------------------------------------------------------------------------------------------
# The run's fixed inputs.


@dataclass(frozen=True)
class Run:
    args: argparse.Namespace
    spec: Spec
    problem_members: tuple
    callers: list  # {"id", "key", "roles", "scopes"}
    tenants: list  # (gateway id, kind)
    host: str
    port: int
    tls: ssl.SSLContext  # HTTP/1.1 over TLS (ALPN http/1.1); None for a plain-HTTP gateway
    tls_h2: ssl.SSLContext  # HTTP/2 (ALPN h2); None for a plain-HTTP gateway


def load_run(args):
    spec = load_spec(args.openapi)
    doc = yaml.safe_load(open(args.openapi, encoding="utf-8"))
    problem = doc["components"]["schemas"]["Problem"].get("required", [])
    callers = json.load(open(args.callers, encoding="utf-8"))
    for caller in callers:
        caller["roles"], caller["scopes"] = set(caller["roles"]), {s.lower() for s in caller["scopes"]}
    vb365 = json.load(open(f"{args.fixtures}/vb365.json", encoding="utf-8"))
    vspc = json.load(open(f"{args.fixtures}/vspc.json", encoding="utf-8"))
    tenants = [(f"vb365-chaos.{o['organization']['id'].lower()}", "organization") for o in vb365["organizations"]]
    tenants += [(f"vspc-chaos.{t['instanceUid'].lower()}", "cloudTenant") for t in vspc["tenants"]]
    url = urllib.parse.urlsplit(args.gateway)
    members = tuple(dict.fromkeys(BASE_PROBLEM_MEMBERS + tuple(problem)))
    tls = tls_h2 = None
    if url.scheme == "https":
        tls, tls_h2 = gateway_context(args.gateway_ca, "http/1.1"), gateway_context(args.gateway_ca, "h2")
    return Run(args, spec, members, callers, tenants, url.hostname, url.port or (443 if tls else 80), tls, tls_h2)


def gateway_context(cafile, alpn):
    """A client TLS context that trusts the gateway's certificate (only it) and offers `alpn`."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols([alpn])
    return context


def load_secrets(path):
    found = {}
    for line in open(path, encoding="utf-8"):
        label, _, value = line.rstrip("\n").partition("\t")
        if value:
            found[value] = label
    return found


def decision(caller, kind, tenant_id):
    """The gateway's default policy (docs/security.md): allow, forbidden (403) or hidden (404)."""
    if caller["roles"] & READERS:
        return "allow"
    if kind == "organization" and tenant_id.lower() in caller["scopes"]:
        return "allow"
    return "hidden" if caller["scopes"] else "forbidden"


# ---------------------------------------------------------------------------------------------
# Gateway tokens: reading, tampering with and forging them.


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token):
    try:
        return json.loads(unb64url(token.split(".")[1]))
    except (ValueError, IndexError):
        return {}


def tampered(token, rng):
    """A token the gateway must refuse, made from a genuine one (never equal to it)."""
    header, payload, signature = token.split(".")
    claims = jwt_claims(token)
    how = rng.randrange(5)
    if how == 0:  # one signature character changed (not the last: it carries padding bits)
        i = rng.randrange(len(signature) - 1)
        return ".".join([header, payload, signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]])
    if how == 1:  # roles raised (and a claim added, so that the payload always changes), signature kept
        claims.update(roles=["PortalAdministrator"], scopes=[], chaos=rng.randrange(1 << 30))
        return ".".join([header, b64url(json.dumps(claims).encode()), signature])
    if how == 2:  # someone else, signature kept
        claims["sub"] = "chaos-portal-admin" if claims.get("sub") != "chaos-portal-admin" else "chaos-company-owner"
        return ".".join([header, b64url(json.dumps(claims).encode()), signature])
    if how == 3:  # alg none
        return b64url(b'{"alg":"none","typ":"JWT"}') + "." + payload + "."
    # signed with another key, claiming to be an administrator
    now = int(time.time())
    head = b64url(b'{"alg":"HS256","kid":"veeam-gateway","typ":"JWT"}')
    body = b64url(json.dumps({"iss": "veeam-gateway", "sub": "chaos-portal-admin", "iat": now, "exp": now + 600,
                              "roles": ["PortalAdministrator"], "scopes": []}).encode())
    mac = hmac.new(rng.randbytes(48), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


# ---------------------------------------------------------------------------------------------
# Requests.


@dataclass
class Request:
    method: str
    target: str
    headers: dict = field(default_factory=dict)
    body: bytes = None
    caller: dict = None  # the caller whose valid credential was sent
    jwt: str = None  # the gateway token sent, if any
    deny: str = None  # why this must not succeed (2xx or 304 would be a violation)
    token_for: dict = None  # a well-formed POST /v1/auth/token for this caller
    sent_if_none_match: bool = False


@dataclass
class Credential:
    headers: dict
    caller: dict = None  # set when valid
    jwt: str = None
    deny: str = None
    needs_token: dict = None  # this caller has no gateway token yet: ask for one first


def pick_credential(run, shared, rng):
    caller = rng.choice(run.callers)
    r = rng.random()
    if r < 0.28:
        return Credential({"X-API-Key": caller["key"]}, caller)
    if r < 0.50:
        return Credential({"Authorization": "Bearer " + caller["key"]}, caller)
    if r < 0.80:
        token = shared.jwt(caller["id"])
        if token is None:
            return Credential({}, needs_token=caller)
        return Credential({"Authorization": "Bearer " + token}, caller, jwt=token)
    deny = "bad credential"
    r = rng.random()
    if r < 0.15:
        return Credential({}, deny=deny)
    if r < 0.30:  # a random key, in either header, with or without "Bearer "
        value = ("Bearer " if rng.random() < 0.5 else "") + "ck-" + b64url(rng.randbytes(32))
        return Credential({rng.choice(["X-API-Key", "Authorization"]): value}, deny=deny)
    if r < 0.40:
        return Credential({"X-API-Key": caller["id"]}, deny=deny)  # an id is not a key
    if r < 0.45:
        return Credential({"X-API-Key": caller["key"][:-1]}, deny=deny)
    if r < 0.50:
        return Credential({"X-API-Key": "k" * 600}, deny=deny)
    if r < 0.55:
        return Credential({"Authorization": "Basic " + b64url(f"{caller['id']}:{caller['key']}".encode())}, deny=deny)
    token = shared.jwt(caller["id"])
    if token is None:
        return Credential({"X-API-Key": "ck-" + b64url(rng.randbytes(32))}, deny=deny)
    if r < 0.60:
        return Credential({"X-API-Key": token}, deny=deny)  # a token is not an API key
    return Credential({"Authorization": "Bearer " + tampered(token, rng)}, deny=deny)


def cache_headers(shared, rng, target):
    headers, sent = {}, False
    if rng.random() < 0.1:
        headers["Cache-Control"] = "no-cache"
    r = rng.random()
    if r < 0.25 and shared.etag(target):
        headers["If-None-Match"], sent = shared.etag(target), True
    elif r < 0.28:
        headers["If-None-Match"], sent = rng.choice(['"0123"', "*", 'W/"x", "y"']), True
    if rng.random() < 0.05:
        headers["X-Request-Id"] = rng.choice(["chaos-" + uuid.uuid4().hex, "not acceptable!", "x" * 200])
    return headers, sent


def query_string(rng):
    """A query for GET /v1/tenants and whether the gateway must refuse it (400)."""
    params, invalid = [], False
    if rng.random() < 0.5:
        return "", False
    choices = {
        "product": [("vb365", True), ("vspc", True), ("bogus", False), ("", False)],
        "upstream": [("vb365-chaos", True), ("vspc-chaos", True), ("nope", True), ("Bad_Name", False), ("a" * 33, False), ("", False)],
        "q": [("alpha", True), ("a", True), ("ABC", True), ("müller", True), ("zzz-none", True), ("", True), ("x" * 200, True),
              ("x" * 201, False), ("bad\x01", False), ("del\x7f", False)],
        "limit": [("1", True), ("2", True), ("100", True), ("500", True), ("0", False), ("501", False), ("abc", False), ("-1", False)],
        "offset": [("0", True), ("1", True), ("4", True), ("1000000", True), ("1000001", False), ("-1", False), ("x", False)],
    }
    for name, values in choices.items():
        if rng.random() < 0.35:
            value, ok = rng.choice(values)
            invalid |= not ok
            params.append(f"{name}={urllib.parse.quote(value, safe='')}")
    return ("?" + "&".join(params)) if params else "", invalid


MALFORMED_IDS = (
    "vb365-chaos.not-a-uuid", "nope.x", "%00%ff%fe", "vspc-chaos.c386d34c-0ab6-4e13-b30a-67fcb05b83e4%00",
    "VSPC-CHAOS.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "vspc-chaos", "..%2F..%2Fetc%2Fpasswd", "%E2%98%83.%E2%98%83",
    "a" * 300, "vspc-chaos.c386d34c-0ab6-4e13-b30a-67fcb05b83e4.x", "vspc-chaos.c386d34c0ab64e13b30a67fcb05b83e4",
    "%7B%7D", "vb365-chaos.cbc52c37-df7f-4b03-98f3-036e7d4b312g", "vb365-chaos.%20cbc52c37-df7f-4b03-98f3-036e7d4b3127",
)
UNKNOWN_PATHS = ("/nope", "/v1/nope", "/v1", "/", "/v1/tenants/x/y", "/V1/TENANTS", "/.env", "/v1/auth/token/extra",
                 "/_sim/faults", "/v2/tenants", "/metrics/x")
WRONG_METHODS = (("POST", "/v1/tenants"), ("PUT", "/v1/tenants/vspc-chaos.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"),
                 ("DELETE", "/v1/tenants/vb365-chaos.cbc52c37-df7f-4b03-98f3-036e7d4b3127"), ("GET", "/v1/auth/token"),
                 ("GET", "/v1/cache"), ("POST", "/healthz"), ("DELETE", "/readyz"), ("PATCH", "/metrics"),
                 ("PUT", "/openapi.yaml"), ("POST", "/v1/upstreams"), ("DELETE", "/v1/auth/token"))


def tenant_request(run, rng, cred):
    r = rng.random()
    if r < 0.70:
        tenant_id, kind = rng.choice(run.tenants)
        target = tenant_id if rng.random() < 0.9 else tenant_id.split(".")[0] + "." + tenant_id.split(".")[1].upper()
        deny = cred.deny or (decision(cred.caller, kind, tenant_id) != "allow" and "role or scope does not allow it")
    elif r < 0.80:
        target, deny = rng.choice(["vb365-chaos.", "vspc-chaos."]) + str(uuid.uuid4()), "unknown tenant"
    elif r < 0.85:
        target, deny = "nope-up." + str(uuid.uuid4()), "unknown upstream"
    else:
        target, deny = rng.choice(MALFORMED_IDS), "malformed id"
    return Request("GET", "/v1/tenants/" + target, deny=cred.deny or deny or None)


PASS_VSPC = ("/infrastructure/sites/tenants", "/infrastructure/sites/tenants?limit=2&offset=1", "/organizations/companies",
             "/alarms/active", "/infrastructure/backupServers/jobs?limit=5", "/infrastructure/vb365Servers/organizations")
PASS_VB365 = ("/Jobs", "/JobSessions", "/LicensedUsers", "/License", "/Proxies", "/BackupRepositories")
PASS_REFUSED = ("/users/me", "/about", "/token", "/organizations")
PASS_HOSTILE = ("/organizations/companies%2F..%2F..%2Ftoken", "/organizations/../users/me", "/./alarms/active",
                "/organizations/%2e%2e/users/me", "/alarms/active?x=%0d%0aHost:%20evil", "/alarms%3Factive")


def passthrough_request(run, rng, cred):
    """GET through the pass-through routes: the shipped table's reads of both products (VSPC's
    upstream form for seed 004's roles, VB365's tenant form for whoever may read the
    organization), paths outside the policy (403) and hostile paths (400)."""
    r = rng.random()
    if r < 0.40:
        target = "/v1/upstreams/vspc-chaos/api" + rng.choice(PASS_VSPC)
        deny = cred.deny or (not (cred.caller["roles"] & READERS) and "not one of the route's roles")
    elif r < 0.80:
        tenant_id = rng.choice([t for t, kind in run.tenants if kind == "organization"])
        target = f"/v1/tenants/{tenant_id}/api" + rng.choice(PASS_VB365)
        deny = cred.deny or (decision(cred.caller, "organization", tenant_id) != "allow" and "may not read the organization")
    elif r < 0.90:
        target, deny = "/v1/upstreams/vspc-chaos/api" + rng.choice(PASS_REFUSED), "outside the pass-through policy"
    else:
        target, deny = "/v1/upstreams/vspc-chaos/api" + rng.choice(PASS_HOSTILE), "hostile pass-through path"
    return Request("GET", target, deny=cred.deny or deny or None)


CUSTOMER_TARGETS = ("/v1/customers", "/v1/customers?limit=2&offset=1", "/v1/customers?q=abc", "/v1/customers?upstream=vspc-chaos",
                    "/v1/customers/drift", "/v1/customers/vspc-chaos.c0a1b2c3-0001-4a1b-8c2d-0000000000a1",
                    "/v1/customers/vspc-chaos.9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")


def customer_request(run, rng, cred):
    """GET /v1/customers, one customer, or the drift report: seed 004's roles read them all; a
    scoped caller reads what its scopes name (its customer, narrowed; others are 404), never the
    drift report (docs/security.md)."""
    if rng.random() < 0.1:
        return Request("GET", "/v1/customers?limit=0", deny=cred.deny or "invalid query")
    target = rng.choice(CUSTOMER_TARGETS)
    if cred.deny:
        return Request("GET", target, deny=cred.deny)
    reader = bool(cred.caller["roles"] & READERS)
    scoped = bool(cred.caller["scopes"])
    if target == "/v1/customers/drift":
        deny = not reader and "not a reader of the customers' drift"
    else:
        deny = not reader and not scoped and "not a reader of customers"
    return Request("GET", target, deny=deny or None)


def purge_request(run, rng, cred):
    tenant_id = rng.choice(run.tenants)[0]
    query, ok = rng.choice([("", True), ("?upstream=vspc-chaos", True), ("?upstream=vb365-chaos", True),
                            ("?upstream=Bad_Name", False), (f"?tenant={tenant_id}", True), ("?tenant=nope", False)])
    admin = cred.caller is not None and cred.caller["roles"] & ADMINS
    deny = cred.deny or (not admin and "not an administrator") or (not ok and "invalid parameter") or None
    return Request("DELETE", "/v1/cache" + query, deny=deny)


def token_request(run, rng, caller=None):
    """POST /v1/auth/token: mostly good credentials, else each way of getting it wrong."""
    forced = caller is not None
    caller = caller or rng.choice(run.callers)
    form = {"grant_type": "client_credentials", "client_id": caller["id"], "client_secret": caller["key"]}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = 0.0 if forced else rng.random()
    deny, body = "bad token request", None
    if r < 0.55:
        deny = None
    elif r < 0.65:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{caller['id']}:{caller['key']}".encode()).decode()
        form = {"grant_type": "client_credentials"}
        deny = None
    elif r < 0.72:
        form["client_secret"] = "ck-" + b64url(rng.randbytes(32))
    elif r < 0.77:
        form["client_secret"] = rng.choice([c for c in run.callers if c is not caller])["key"]
    elif r < 0.82:
        form["grant_type"] = "password"
    elif r < 0.86:
        del form["grant_type"]
    elif r < 0.90:
        headers["Content-Type"], body = "application/json", json.dumps(form).encode()
    elif r < 0.93:
        body = b""
    elif r < 0.95:
        body = b"grant_type=client_credentials&pad=" + b"x" * (20 * 1024)  # over the 16 KiB limit: 413
    elif r < 0.97:
        form["client_id"], form["client_secret"] = caller["key"], caller["id"]
    else:
        body = f"grant_type=client_credentials&client_id={caller['id']}&client_secret=%ZZ".encode()
    if body is None:
        body = urllib.parse.urlencode(form).encode()
    return Request("POST", "/v1/auth/token", headers, body, deny=deny, token_for=None if deny else caller)


MADE_UP_METHODS = ("X1Y", "FOO", "get", "Get", "GETS", "PURGE", "PROPFIND", "QUERY", "BREW", "M-SEARCH", "DELETE2", "_")
TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def made_up_method(rng):
    """An HTTP/2 `:method` that is a token but no method the gateway serves (nor HEAD, OPTIONS, CONNECT)."""
    if rng.random() < 0.5:
        return rng.choice(MADE_UP_METHODS)
    while True:
        method = "".join(rng.choice(TCHARS) for _ in range(rng.randint(1, 24)))
        if method not in METHOD_LABELS and method.upper() not in METHOD_LABELS:
            return method


def made_up_request(run, rng):
    """A made-up method on one of our paths (405 with Allow) or an unknown one (404), sometimes
    with a valid key: what HTTP/1's parser refuses, HTTP/2 hands to the router."""
    r = rng.random()
    if r < 0.15:
        target = rng.choice(UNKNOWN_PATHS)
    elif r < 0.45:
        target = "/v1/tenants/" + rng.choice(run.tenants)[0]
    else:
        target = rng.choice(sorted({t for t, _ in run.spec.operations if "{" not in t}))
    req = Request(made_up_method(rng), target)
    if rng.random() < 0.5:
        req.headers["X-API-Key"] = rng.choice(run.callers)["key"]
    return req


def make_request(run, shared, rng, proto=HTTP1):
    """One random request, with what its answer must (not) be (made-up methods on HTTP/2 only)."""
    kinds = ["list", "tenant", "upstreams", "purge", "token", "readyz", "healthz", "metrics", "openapi",
             "unknown", "wrong-method", "made-up-method", "passthrough", "customers"]
    kind = rng.choices(kinds, weights=[24, 34, 5, 1, 6, 3, 6, 4, 2, 2, 3, 3 if proto == HTTP2 else 0, 10, 4])[0]
    if kind == "made-up-method":
        return made_up_request(run, rng)
    if kind == "token":
        return token_request(run, rng)
    if kind in ("readyz", "healthz", "metrics", "openapi"):
        target = {"readyz": "/readyz", "healthz": "/healthz", "metrics": "/metrics", "openapi": "/openapi.yaml"}[kind]
        return Request("GET", target)
    if kind == "unknown":
        return Request(rng.choice(["GET", "GET", "POST", "DELETE"]), rng.choice(UNKNOWN_PATHS))
    if kind == "wrong-method":
        method, target = rng.choice(WRONG_METHODS)
        return Request(method, target)
    cred = pick_credential(run, shared, rng)
    if cred.needs_token:
        return token_request(run, rng, cred.needs_token)
    if kind == "list":
        query, invalid = query_string(rng)
        req = Request("GET", "/v1/tenants" + query, deny=cred.deny or (invalid and "invalid query") or None)
    elif kind == "tenant":
        req = tenant_request(run, rng, cred)
    elif kind == "passthrough":
        req = passthrough_request(run, rng, cred)
    elif kind == "customers":
        req = customer_request(run, rng, cred)
    elif kind == "upstreams":
        admin = cred.caller is not None and cred.caller["roles"] & ADMINS
        req = Request("GET", "/v1/upstreams", deny=cred.deny or (not admin and "not an administrator") or None)
    else:
        req = purge_request(run, rng, cred)
    req.caller, req.jwt = cred.caller, cred.jwt
    req.headers.update(cred.headers)
    if req.method == "GET":
        extra, req.sent_if_none_match = cache_headers(shared, rng, req.target)
        req.headers.update(extra)
    return req


# ---------------------------------------------------------------------------------------------
# Sending.


@dataclass
class Answer:
    status: int
    headers: dict  # lower-case names
    body: bytes
    seconds: float


class Client:
    """One HTTP/1.1 keep-alive connection to the gateway (over TLS when `context` is given);
    closed after any error and reopened."""

    protocol = HTTP1

    def __init__(self, host, port, context=None, shared=None):
        self.host, self.port, self.context, self.conn = host, port, context, None

    def send(self, req):
        """An Answer, or a (kind, detail) failure."""
        if self.conn is None:
            if self.context is not None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=HANG_SECONDS)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HANG_SECONDS)
        started = time.monotonic()
        try:
            self.conn.request(req.method, req.target, body=req.body, headers=req.headers)
            response = self.conn.getresponse()
            body = response.read()
            headers = {}
            for name, value in response.getheaders():
                headers[name.lower()] = headers[name.lower()] + ", " + value if name.lower() in headers else value
            if response.will_close:
                self.close()
            return Answer(response.status, headers, body, time.monotonic() - started)
        except (socket.timeout, TimeoutError):
            self.close()
            return ("hang", f"no answer within {HANG_SECONDS} s")
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return ("connection", f"{type(error).__name__}: {error}")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class H2Gone(Exception):
    """The HTTP/2 connection ended (EOF, GOAWAY, a socket error) before the exchange did."""

    def __init__(self, detail, retry=False):
        super().__init__(detail)
        self.retry = retry  # a graceful GOAWAY that the request may be sent again after


def h2_socket(host, port, context, timeout):
    """A TLS socket to the gateway that negotiated h2 (ALPN), or OSError."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        sock = context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    if sock.selected_alpn_protocol() != "h2":
        sock.close()
        raise ConnectionError(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
    return sock


def h2_code(code):
    """An HTTP/2 error code's name (NO_ERROR, PROTOCOL_ERROR, …), or its number."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


def h2_connection():
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    return conn


class H2Client:
    """One HTTP/2 connection to the gateway (h2 over TLS, ALPN h2), reused for sequential
    requests; closed after any error and reopened. Answers as `Client` does: headers lower-cased,
    `:status` as the status, repeated fields joined with ", ". A request overtaken by a graceful
    GOAWAY (NO_ERROR: the server closing an idle connection) before any answer is sent once more
    on a new connection (counted in the report)."""

    protocol = HTTP2

    def __init__(self, host, port, context, shared=None):
        self.host, self.port, self.context, self.shared = host, port, context, shared
        self.sock = self.conn = None

    def send(self, req):
        """An Answer, or a (kind, detail) failure."""
        started = time.monotonic()
        deadline = started + HANG_SECONDS
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.sock = h2_socket(self.host, self.port, self.context, HANG_SECONDS)
                    self.conn = h2_connection()
                    self.sock.sendall(self.conn.data_to_send())
                status, headers, body = self._exchange(req, deadline)
                return Answer(status, headers, body, time.monotonic() - started)
            except (socket.timeout, TimeoutError):
                self.close()
                return ("hang", f"no answer within {HANG_SECONDS} s (HTTP/2)")
            except H2Gone as gone:
                self.close()
                if gone.retry and attempt == 1:
                    if self.shared is not None:
                        with self.shared.lock:
                            self.shared.goaway_retries += 1
                    continue
                return ("connection", f"HTTP/2: {gone}")
            except (OSError, h2.exceptions.H2Error) as error:
                self.close()
                return ("connection", f"HTTP/2 {type(error).__name__}: {error}")
        return ("connection", "HTTP/2: unreachable")

    def _exchange(self, req, deadline):
        conn, sock = self.conn, self.sock
        sid = conn.get_next_available_stream_id()
        fields = [(b":method", req.method.encode()), (b":path", req.target.encode()), (b":scheme", b"https"),
                  (b":authority", f"{self.host}:{self.port}".encode())]
        fields += [(name.lower().encode(), str(value).encode("latin-1")) for name, value in req.headers.items()]
        pending = req.body
        if pending is not None:
            fields.append((b"content-length", str(len(pending)).encode()))
        conn.send_headers(sid, fields, end_stream=pending is None)
        sent_all = pending is None
        status, headers, body, ended = None, {}, bytearray(), False
        while True:
            if not sent_all and not ended:  # as much of the body as the windows allow
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                while pending and window > 0:
                    conn.send_data(sid, pending[:window])
                    pending = pending[window:]
                    window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if not pending:
                    conn.end_stream(sid)
                    sent_all = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if ended:
                if not sent_all:  # answered before the body was sent (e.g. 413): release the stream
                    conn.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
                    sock.sendall(conn.data_to_send())
                return status, headers, bytes(body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise H2Gone("the connection was closed before the answer" + ("" if status is None else " ended"))
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    graceful = event.error_code == 0 and status is None
                    raise H2Gone(f"GOAWAY {h2_code(event.error_code)} (last stream {event.last_stream_id}, ours {sid})"
                                 + ("" if status is None else " after the answer's head"), retry=graceful)
                if getattr(event, "stream_id", None) != sid:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    for name, value in event.headers:
                        name, value = name.decode("latin-1").lower(), value.decode("latin-1")
                        if name == ":status":
                            status = int(value)
                        elif not name.startswith(":"):
                            headers[name] = headers[name] + ", " + value if name in headers else value
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.StreamReset):
                    raise H2Gone(f"stream {sid} reset by the gateway ({h2_code(event.error_code)})"
                                 + (" before the answer" if status is None else " during the answer"))
            if ended and status is None:
                raise H2Gone(f"stream {sid} ended without a response head")

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.conn = None


# ---------------------------------------------------------------------------------------------
# Checks on one answer.


def media_type(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


def check(run, shared, req, ans, proto=HTTP1):
    where = f"{req.method} {req.target[:120]}" + (" (HTTP/2)" if proto == HTTP2 else "")
    template = run.spec.template(req.target)
    status, key = ans.status, str(ans.status)
    answers = run.spec.operations.get((template, req.method))
    # Made-up methods share one row per route and status (their names are random).
    made_up = req.method not in METHOD_LABELS
    method_row = "(made-up)" if made_up else req.method
    if made_up:
        with shared.lock:
            shared.made_up[proto] += 1
    # 1. The status is listed for the route and method (404 on unknown paths and 405 on wrong
    #    methods are informational: the document lists neither).
    expected = None
    if template is None:
        route = "(unknown path)"
        if status == 404:
            shared.count(route, method_row, status, proto, "informational: docs/openapi.yaml lists no unknown paths")
        else:
            shared.count(route, method_row, status, proto)
            shared.violation("status", f"{where}: an unknown path answered {status}, not 404")
    elif answers is None:
        route = template
        if status == 405:
            shared.count(route, method_row, status, proto, "informational: docs/openapi.yaml lists no 405")
            allow = {m.strip().upper() for m in ans.headers.get("allow", "").split(",") if m.strip()}
            if allow != run.spec.methods(template):
                shared.violation("headers", f"{where}: 405 with Allow {sorted(allow)}, the document has {sorted(run.spec.methods(template))}")
        else:
            shared.count(route, method_row, status, proto)
            shared.violation("status", f"{where}: {template} has no {req.method} in the document, yet the answer was {status}, not 405")
    else:
        route = template
        shared.count(route, method_row, status, proto)
        if key in answers:
            expected = answers[key]
        else:
            shared.violation("status", f"{req.method} {template}: {status} is not in docs/openapi.yaml (it lists {', '.join(sorted(answers))}); e.g. {where}")
    # 2. The body's shape.
    check_body(run, shared, req, ans, where, expected)
    # 3. What must be refused is; what must be allowed is not refused for who the caller is.
    ok = 200 <= status < 300 or status == 304
    if req.deny and ok and template is not None and answers is not None:
        shared.violation("access", f"{where}: answered {status} although it must be refused ({req.deny})")
    if status == 401 and req.jwt:  # expired (then fetch another) or wrongly refused
        shared.forget_jwt(req.caller["id"], req.jwt)
        if jwt_claims(req.jwt).get("exp", 0) > time.time() + 2:
            shared.violation("access", f"{where}: a valid gateway token of {req.caller['id']} was answered 401")
    elif status == 401 and (req.caller or req.token_for):
        who = (req.caller or req.token_for)["id"]
        shared.violation("access", f"{where}: a valid credential of {who} was answered 401")
    if status == 403 and req.caller and not req.deny:
        shared.violation("access", f"{where}: {req.caller['id']} may read this but was answered 403")
    # 4. Remember what later requests use.
    if status == 200 and "etag" in ans.headers:
        shared.remember_etag(req.target, ans.headers["etag"])
    if status == 200 and req.token_for:
        value = json_body(ans.body)
        token = value.get("access_token") if isinstance(value, dict) else None
        if isinstance(token, str) and token.count(".") == 2:
            shared.remember_jwt(req.token_for["id"], token)
        else:
            shared.violation("body", f"{where}: 200 without an access_token")
    # 5. No secret in the body.
    if ans.body:
        digest = shared.keep_body(ans.body, f"{where} → {status}")
        for _, label in shared.secret_matcher().find(ans.body):
            if shared.first_report(digest, label):
                shared.violation("secret", f"{where} → {status}: the response body holds the {label}")


def json_body(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


def check_body(run, shared, req, ans, where, expected):
    status, media = ans.status, media_type(ans.headers)
    if status == 304:
        if ans.body:
            shared.violation("body", f"{where}: 304 with a body")
        if not req.sent_if_none_match:
            shared.violation("status", f"{where}: 304 without If-None-Match")
        return
    documented_media, required = expected if expected else ((), ())
    error = status >= 400
    if error and "application/problem+json" not in documented_media and documented_media:
        pass  # an error the document gives another shape (the /readyz 503: Readiness)
    elif error:
        documented_media, required = ("application/problem+json",), run.problem_members
    if documented_media and media not in documented_media:
        shared.violation("body", f"{where}: {status} is {media or 'without Content-Type'}, the document says {', '.join(documented_media)}")
        return
    if media not in ("application/json", "application/problem+json"):
        return
    value = json_body(ans.body)
    if status == 200 and "/api/" in req.target and value is not None:
        return  # a pass-through answer is the upstream's JSON (VB365 before v8 answers bare arrays)
    if not isinstance(value, dict):
        shared.violation("body", f"{where}: {status} body is not a JSON object")
        return
    missing = [m for m in required if m not in value]
    if missing:
        shared.violation("body", f"{where}: {status} body lacks {', '.join(missing)}")
    if media == "application/problem+json":
        if value.get("status") != status:
            shared.violation("body", f"{where}: problem status {value.get('status')!r} but HTTP {status}")
        if isinstance(value.get("code"), str) and value.get("type") != "urn:veeam-gateway:problem:" + value["code"]:
            shared.violation("body", f"{where}: problem type {value.get('type')!r} does not name code {value['code']!r}")
    if req.method == "GET" and req.target == "/readyz" and value.get("status") != ("ready" if status == 200 else "not ready"):
        shared.violation("body", f"{where}: {status} with readiness status {value.get('status')!r}")
    if status == 200 and req.caller and run.spec.template(req.target) == "/v1/tenants":
        hidden = [str(t.get("id")) for t in value.get("data") or []
                  if isinstance(t, dict) and decision(req.caller, t.get("kind"), str(t.get("id"))) != "allow"]
        if hidden:
            shared.violation("access", f"{where}: the list shows {req.caller['id']} {len(hidden)} tenant(s) it may not read, e.g. {hidden[0]}")


# ---------------------------------------------------------------------------------------------
# Threads.


def new_client(run, shared, proto):
    if proto == HTTP2:
        return H2Client(run.host, run.port, run.tls_h2, shared)
    return Client(run.host, run.port, run.tls, shared)


def client_loop(run, shared, seed, deadline, proto=HTTP1):
    rng = random.Random(seed)
    client = new_client(run, shared, proto)
    while not shared.stop.is_set() and time.monotonic() < deadline:
        try:
            req = make_request(run, shared, rng, proto)
            ans = client.send(req)
            if isinstance(ans, Answer):
                if ans.seconds > HANG_SECONDS:
                    shared.violation("hang", f"{req.method} {req.target[:120]} ({proto}): answered after {ans.seconds:.1f} s")
                check(run, shared, req, ans, proto)
            else:
                kind, detail = ans
                method_row = req.method if req.method in METHOD_LABELS else "(made-up)"
                shared.count(run.spec.template(req.target) or "(unknown path)", method_row, kind, proto)
                shared.violation(kind, f"{req.method} {req.target[:120]} ({proto}): {detail}")
                if not process_state(run.args.gateway_pid)[0]:
                    shared.stop.set()  # the gateway is gone: main() reports it
        except Exception as error:  # a bug in this script: reported, never silent
            shared.violation("chaos.py", f"{type(error).__name__} in a client thread: {error}")
            client.close()
    client.close()


# ---------------------------------------------------------------------------------------------
# Hostile HTTP/2: connections whose streams stall.

STALL_KINDS = ("streams", "partial-body", "continuation", "idle", "silent", "h1-idle", "h1-partial-head", "h1-partial-body")


def stalled_requests(run, rng, partial):
    """2-6 requests whose streams will never end: (method, target, headers, partial body or None)."""
    found = []
    for _ in range(rng.randint(2, 6)):
        key = [("x-api-key", rng.choice(run.callers)["key"])]
        form = [("content-type", "application/x-www-form-urlencoded"), ("content-length", str(rng.randint(60, 400)))]
        start = b"grant_type=client_credentials&client_id=" if partial else None
        r = 0.0 if partial and rng.random() < 0.7 else rng.random()
        if r < 0.3:
            found.append(("POST", "/v1/auth/token", form, start))
        elif r < 0.5:
            found.append(("GET", "/v1/tenants", key, None))
        elif r < 0.65:
            found.append(("GET", "/v1/tenants/" + rng.choice(run.tenants)[0], key, None))
        elif r < 0.75:
            found.append(("GET", "/healthz", [], None))
        elif r < 0.85:
            found.append(("GET", rng.choice(UNKNOWN_PATHS), [], None))
        else:
            found.append((made_up_method(rng), "/v1/tenants", key + form, start))
    return found


def read_until_closed(sock, until):
    """Reads (and drops) what arrives until the peer closes (True) or `until` passes (False)."""
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:  # reset, or TLS torn down: closed all the same
            return True


def stall_session(run, shared, rng, kind):
    """One hostile connection. `streams`: HEADERS without END_STREAM on 2-6 streams (sometimes a
    complete GET /healthz beside them, which must be answered); `partial-body`: most of them
    also send part of the body they promise; `continuation`: a header block whose CONTINUATION
    never comes (sometimes after one complete request); `idle`: one complete request, then
    nothing at all (not even the PING the server sends as it starts to close); `silent`: the
    preface and SETTINGS, then no stream. Every stalled stream must be reset, or the connection
    closed, within head deadline + idle timeout + STALL_MARGIN (an HTTP/1.1 connection that goes
    quiet is closed after the idle timeout whatever its peer does). Returns the seconds it took.
    The `h1-` kinds are their HTTP/1.1 twins, for comparison: one request then silence, half a
    head, part of a promised body."""
    bound = run.args.head_timeout + run.args.idle_timeout + STALL_MARGIN
    if kind.startswith("h1-"):
        return stall_session_http1(run, shared, kind, bound)
    client = H2Client(run.host, run.port, run.tls_h2, shared)
    try:
        client.sock = h2_socket(run.host, run.port, run.tls_h2, HANG_SECONDS)
        client.conn = h2_connection()
        client.sock.sendall(client.conn.data_to_send())
    except OSError as error:
        client.close()
        shared.violation("connection", f"stall session ({kind}): could not open an HTTP/2 connection: {type(error).__name__}: {error}")
        return None
    sock, conn = client.sock, client.conn
    try:
        if kind in ("silent", "idle"):
            if kind == "idle":
                ans = client.send(Request("GET", "/healthz"))
                if not isinstance(ans, Answer) or ans.status != 200:
                    shared.violation("stall", f"idle: GET /healthz before the silence was not answered 200 ({ans.status if isinstance(ans, Answer) else ans[1]})")
                    return None
                sock = client.sock  # the same connection (a retry after GOAWAY would have made another)
            stalled_at = time.monotonic()
            closed = read_until_closed(sock, stalled_at + bound)
            what = ("a connection that opened no stream" if kind == "silent" else
                    "a connection silent after one answered request (the server's PING unanswered)")
            return finish_stall(shared, kind, 0, stalled_at, bound, closed, what)
        if kind == "continuation":
            after = rng.random() < 0.5
            if after:  # one complete request first: the connection is past its first-stream deadline
                ans = client.send(Request("GET", "/healthz"))
                if not isinstance(ans, Answer) or ans.status != 200:
                    shared.violation("stall", f"continuation: GET /healthz before the stall was not answered 200 ({ans.status if isinstance(ans, Answer) else ans[1]})")
                    return None
                sock, conn = client.sock, client.conn
            sid = conn.get_next_available_stream_id()
            block = hpack.Encoder().encode([(":method", "GET"), (":path", "/v1/tenants"), (":scheme", "https"),
                                            (":authority", f"{run.host}:{run.port}"), ("x-api-key", rng.choice(run.callers)["key"])])
            part = block[: max(1, len(block) // 2)]
            sock.sendall(conn.data_to_send() + len(part).to_bytes(3, "big") + b"\x01\x00" + sid.to_bytes(4, "big") + part)
            stalled_at = time.monotonic()
            closed = read_until_closed(sock, stalled_at + bound)
            what = "a header block without its CONTINUATION " + ("after one answered request" if after else "as the first stream")
            return finish_stall(shared, kind, 1, stalled_at, bound, closed, what)
        stalled = {}
        for method, target, fields, partial in stalled_requests(run, rng, kind == "partial-body"):
            sid = conn.get_next_available_stream_id()
            head = [(":method", method), (":path", target), (":scheme", "https"), (":authority", f"{run.host}:{run.port}")] + fields
            conn.send_headers(sid, [(n.encode(), v.encode()) for n, v in head], end_stream=False)
            if partial:
                conn.send_data(sid, partial)
            stalled[sid] = f"{method} {target[:60]}"
        complete = None
        if kind == "streams" and rng.random() < 0.5:
            complete = conn.get_next_available_stream_id()
            conn.send_headers(complete, [(b":method", b"GET"), (b":path", b"/healthz"), (b":scheme", b"https"),
                                         (b":authority", f"{run.host}:{run.port}".encode())], end_stream=True)
        sock.sendall(conn.data_to_send())
        stalled_at = time.monotonic()
        until = stalled_at + bound
        reset, statuses, complete_status, closed = set(), Counter(), None, False
        while not closed and not reset >= set(stalled):
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            for event in conn.receive_data(data):
                sid = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.ConnectionTerminated):  # GOAWAY: then the close must follow
                    closed = read_until_closed(sock, until)
                    break
                if isinstance(event, h2.events.StreamReset) and sid in stalled:
                    reset.add(sid)
                elif isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(b":status", b"?").decode()
                    if sid == complete:
                        complete_status = status
                    else:
                        statuses[status] += 1
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
            else:
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        if complete is not None and complete_status != "200":
            shared.violation("stall", f"{kind}: GET /healthz beside {len(stalled)} stalled stream(s) was answered {complete_status or 'nothing'}, not 200")
        left = [what for sid, what in stalled.items() if sid not in reset]
        detail = (f"{len(left)} of {len(stalled)} stalled stream(s) neither reset nor closed, e.g. {left[0]}"
                  + (f"; answered on stalled streams: {dict(statuses)}" if statuses else "")) if left else ""
        return finish_stall(shared, kind, len(stalled), stalled_at, bound, closed or not left, detail)
    except (OSError, h2.exceptions.H2Error) as error:
        shared.violation("connection", f"stall session ({kind}): {type(error).__name__}: {error}")
        return None
    finally:
        client.close()


def stall_session_http1(run, shared, kind, bound):
    try:
        sock = run.tls.wrap_socket(socket.create_connection((run.host, run.port), timeout=HANG_SECONDS), server_hostname=run.host)
    except OSError as error:
        shared.violation("connection", f"stall session ({kind}): could not open an HTTP/1.1 connection: {type(error).__name__}: {error}")
        return None
    try:
        host = f"Host: {run.host}:{run.port}\r\n".encode()
        if kind == "h1-idle":
            sock.sendall(b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n")
            what = "an HTTP/1.1 connection silent after one request"
        elif kind == "h1-partial-head":
            sock.sendall(b"GET /v1/tenants HTTP/1.1\r\n" + host + b"X-API-Key: ")
            what = "an HTTP/1.1 request head never finished"
        else:
            sock.sendall(b"POST /v1/auth/token HTTP/1.1\r\n" + host + b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 200\r\n\r\ngrant_type=client_credentials&client_id=")
            what = "an HTTP/1.1 body promised and never sent"
        stalled_at = time.monotonic()
        closed = read_until_closed(sock, stalled_at + bound)
        return finish_stall(shared, kind, 0, stalled_at, bound, closed, what)
    except OSError as error:
        shared.violation("connection", f"stall session ({kind}): {type(error).__name__}: {error}")
        return None
    finally:
        sock.close()


def finish_stall(shared, kind, streams, stalled_at, bound, released, what):
    elapsed = time.monotonic() - stalled_at
    with shared.lock:
        shared.stalls[kind] += 1
        shared.stall_streams += streams
        if released:
            shared.stall_seconds.setdefault(kind, []).append(elapsed)
    if not released:
        shared.violation("stall", f"{kind}: {what} still open {bound:g} s later (head deadline + idle timeout + {STALL_MARGIN} s)")
    return elapsed if released else None


def stall_loop(run, shared, seed, deadline):
    """Stall sessions back to back; none starts unless it can end before the run's deadline."""
    rng = random.Random(seed)
    bound = run.args.head_timeout + run.args.idle_timeout + STALL_MARGIN
    while not shared.stop.is_set() and time.monotonic() + bound < deadline:
        try:
            stall_session(run, shared, rng, rng.choices(STALL_KINDS, weights=[34, 22, 10, 10, 8, 6, 5, 5])[0])
        except Exception as error:  # a bug in this script: reported, never silent
            shared.violation("chaos.py", f"{type(error).__name__} in a stall thread: {error}")
        shared.stop.wait(rng.uniform(0, 0.5))


class Simulator:
    """The simulator's loopback admin routes, over HTTPS with its CA, on either product's port."""

    def __init__(self, run, rng):
        self.bases = [urllib.parse.urlsplit(u) for u in (run.args.vb365, run.args.vspc)]
        self.context = ssl.create_default_context(cafile=run.args.ca)
        self.rng = rng

    def call(self, method, path, body=None):
        base = self.rng.choice(self.bases)
        conn = http.client.HTTPSConnection(base.hostname, base.port, context=self.context, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            response = conn.getresponse()
            payload = response.read()
            return json_body(payload) if response.status == 200 else None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def tokens(self):
        answer = self.call("GET", "/_sim/tokens")
        return answer.get("tokens") if isinstance(answer, dict) else None

    def calm(self):
        ok = all(self.call("PUT", f"/_sim/faults/{p}", {}) is not None for p in ("vb365", "vspc"))
        return self.call("PUT", "/_sim/refresh?reject=false") is not None and ok


def random_faults(rng, product):
    faults = {}
    for name, top in (("errorRate", 0.3), ("malformedRate", 0.15), ("resetRate", 0.15), ("throttleRate", 0.15)):
        if rng.random() < 0.5:
            faults[name] = round(rng.uniform(0, top), 3)
    if "throttleRate" in faults:
        faults["retryAfterSeconds"] = rng.randint(1, 2)
    if rng.random() < 0.5:
        faults["latencyMs"] = rng.randint(0, 400)
    if product == "vspc" and rng.random() < 0.4:
        faults["asyncRate"] = round(rng.uniform(0, 0.2), 3)
    return faults


def fault_loop(run, shared, seed, vb365_users):
    """Every 2-4 s changes the simulator; fetches its tokens as it goes; calms it at the end."""
    rng = random.Random(seed)
    sim = Simulator(run, rng)
    rejecting = False
    actions = ["faults", "calm", "revoke-all", "revoke-user", "clock", "reject-refresh", "outage"]
    while not shared.stop.wait(rng.uniform(2, 4)):
        if rejecting:
            shared.fault("refresh-accepted", sim.call("PUT", "/_sim/refresh?reject=false") is not None)
            rejecting = False
        action = rng.choices(actions, weights=[40, 15, 8, 10, 9, 10, 8])[0]
        if action == "faults":
            ok = all(sim.call("PUT", f"/_sim/faults/{p}", random_faults(rng, p)) is not None for p in ("vb365", "vspc"))
        elif action == "calm":
            ok = sim.calm()
        elif action == "revoke-all":
            ok = sim.call("POST", "/_sim/revoke") is not None
        elif action == "revoke-user":
            product, user = rng.choice([("vspc", "gateway-svc")] + [("vb365", u) for u in vb365_users])
            ok = sim.call("POST", f"/_sim/revoke?product={product}&user={urllib.parse.quote(user, safe='')}") is not None
        elif action == "clock":
            ok = sim.call("POST", "/_sim/clock/advance?seconds=30") is not None
        elif action == "reject-refresh":
            ok = sim.call("PUT", "/_sim/refresh?reject=true") is not None
            rejecting = True
        else:  # one product fails every resource request for a while: stale-if-error answers
            ok = sim.call("PUT", f"/_sim/faults/{rng.choice(['vb365', 'vspc'])}", {"errorRate": 1}) is not None
        shared.fault(action, ok)
        tokens = sim.tokens()
        if tokens is not None:
            shared.add_tokens(tokens)
    shared.fault("calm at the end", sim.calm())


def process_state(pid):
    """(alive, start time, RSS in MiB) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except (OSError, IndexError, ValueError):
        return False, None, 0.0
    return fields[0] not in ("Z", "X"), fields[19], rss / 1024


def monitor_loop(run, shared, pid, started):
    """Every second: the gateway is alive, the same process, and within its memory bound."""
    while True:
        alive, start, rss = process_state(pid)
        if not alive:
            shared.violation("process", f"the gateway process {pid} died")
            shared.stop.set()
            return
        if start != started:
            shared.violation("process", f"the gateway process {pid} was restarted")
            shared.stop.set()
            return
        shared.sample_rss(rss, run.args.max_rss_mb)
        if shared.stop.wait(1):
            return


# ---------------------------------------------------------------------------------------------
# The end: final checks, the search for secrets, the report.


def final_checks(run, shared, gateway_alive):
    sim = Simulator(run, random.Random())
    if not sim.calm():
        shared.violation("simulator", "could not set the simulator's faults back to none")
    if gateway_alive:
        for proto in protocols(run):
            client = new_client(run, shared, proto)
            answer = client.send(Request("GET", "/healthz"))
            client.close()
            if not isinstance(answer, Answer) or answer.status != 200:
                shared.violation("process", f"the final /healthz ({proto}) did not answer 200 ({answer.status if isinstance(answer, Answer) else answer[1]})")
        check_metrics(run, shared)
    tokens = sim.tokens()
    if tokens is None:
        shared.violation("simulator", "could not read the simulator's tokens (GET /_sim/tokens): the leak search is incomplete")
        tokens = []
    shared.add_tokens(tokens, force=True)
    matcher = shared.secret_matcher()
    for body, where in shared.bodies:
        for _, label in matcher.find(body):
            if shared.first_report(hashlib.blake2b(body, digest_size=16).digest(), label):
                shared.violation("secret", f"{where}: the response body holds the {label}")
    with shared.lock:
        log_secrets = {**shared.static_secrets, **shared.tokens}
        log_secrets.update({sig: "signature of a gateway token issued to a caller" for sig in shared.jwt_signatures})
    log = open(run.args.log, "rb").read()
    for offset, label in SecretMatcher(log_secrets).find(log):
        line = log.count(b"\n", 0, offset) + 1
        shared.violation("secret", f"gateway log line {line} holds the {label}")
    check_logged_methods(shared, log)
    return log.count(b"\n")


def protocols(run):
    return (HTTP1, HTTP2) if run.tls_h2 is not None else (HTTP1,)


METHOD_LABEL = re.compile(r'[{,]method="((?:[^"\\]|\\.)*)"')


def check_metrics(run, shared):
    """Every /metrics series with a method label names an HTTP method or `other`; once made-up
    methods were answered, `other` is there (they were counted, under that name)."""
    client = new_client(run, shared, HTTP1)
    answer = client.send(Request("GET", "/metrics"))
    client.close()
    if not isinstance(answer, Answer) or answer.status != 200:
        shared.violation("metrics", f"the final GET /metrics did not answer 200 ({answer.status if isinstance(answer, Answer) else answer[1]})")
        return
    seen = Counter()
    for line in answer.body.decode("utf-8", "replace").splitlines():
        if line.startswith("veeam_gateway_") and not line.startswith("#"):
            for label in METHOD_LABEL.findall(line.split("}", 1)[0]):
                seen[label] += 1
                if label not in METHOD_LABELS:
                    shared.violation("metrics", f"/metrics has a series with method label {label!r}: {line[:160]}")
    if not any(line.startswith("veeam_gateway_http_requests_total{") for line in answer.body.decode("utf-8", "replace").splitlines()):
        shared.violation("metrics", "/metrics has no veeam_gateway_http_requests_total series")
    with shared.lock:
        made_up = sum(shared.made_up.values())
    if made_up and not seen["other"]:
        shared.violation("metrics", f"{made_up} made-up methods were answered, yet /metrics has no method=\"other\" series")


def check_logged_methods(shared, log):
    """The access log's method field names an HTTP method or `other` (its JSON lines: message
    "request"; other lines use `method` for an upstream call, "GET /v8/Organization → 401")."""
    bad = Counter()
    for line in log.splitlines():
        if b'"method"' not in line or b'"message":"request"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        method = entry.get("method") if isinstance(entry, dict) and entry.get("message") == "request" else None
        if isinstance(method, str) and method not in METHOD_LABELS:
            bad[method] += 1
    for method, n in bad.most_common(5):
        shared.violation("metrics", f"the access log records method {method[:40]!r} ({n} lines), not one of the HTTP methods or other")


def report(run, shared, elapsed, log_lines, interrupted=False):
    rows = sorted(shared.counts.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3]))
    total = sum(shared.counts.values())
    width = max([len(r[0][0]) for r in rows] + [len("route")])
    print(f"\n{'route'.ljust(width)}  {'method':9}  {'status':10}  {'protocol':8}  {'count':>8}")
    for (route, method, status, proto), n in rows:
        note = shared.notes.get((route, method, status), "")
        print(f"{route.ljust(width)}  {method:9}  {str(status):10}  {proto:8}  {n:>8}  {note}".rstrip())
    by_proto = Counter()
    for (_, _, _, proto), n in shared.counts.items():
        by_proto[proto] += n
    print(f"\n{total} requests in {elapsed:.0f} s ({total / max(elapsed, 0.001):.0f}/s), {run.args.threads} clients, seed {run.args.seed}")
    print("by protocol: " + ", ".join(f"{p} {by_proto[p]} ({by_proto[p] / max(elapsed, 0.001):.0f}/s, {threads} clients)"
                                      for p, threads in zip(protocols(run), split_threads(run)) if threads or by_proto[p])
          + (f"; made-up methods answered: {sum(shared.made_up.values())}" if shared.made_up else "")
          + (f"; HTTP/2 requests sent again after a graceful GOAWAY: {shared.goaway_retries}" if run.tls_h2 is not None else ""))
    if shared.stalls:
        def released(kind):
            times = sorted(shared.stall_seconds.get(kind, []))
            if not times:
                return "none released"
            return f"released {len(times)} after {times[0]:.1f}–{times[-1]:.1f} s" + (f", median {times[len(times) // 2]:.1f}" if len(times) > 2 else "")
        print(f"stall sessions: {sum(shared.stalls.values())}, {shared.stall_streams} stalled HTTP/2 streams "
              f"(bound {run.args.head_timeout + run.args.idle_timeout + STALL_MARGIN:g} s): "
              + "; ".join(f"{k} {v} ({released(k)})" for k, v in sorted(shared.stalls.items())))
    print("simulator actions: " + ", ".join(f"{k} {v}" for k, v in sorted(shared.faults.items())) +
          f"; admin calls failed: {shared.sim_errors}")
    print(f"secrets searched: {len(shared.static_secrets)} static, {len(shared.tokens)} upstream tokens, "
          f"{len(shared.jwt_signatures)} gateway tokens (log only); {len(shared.bodies)} distinct bodies "
          f"({shared.body_bytes / 1048576:.1f} MiB kept, {shared.bodies_not_kept} searched live only), {log_lines} log lines")
    rss = shared.rss_mib or [0.0]
    print(f"gateway RSS MiB: first {rss[0]:.1f}, last {rss[-1]:.1f}, max {max(rss):.1f} (bound {run.args.max_rss_mb:g})")
    count = sum(shared.violations.values())
    print(f"violations: {count}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(shared.violations.items())) + ")" if count else ""))
    if count:
        shown = shared.shown()
        print(f"the first {len(shown)} (distinct, by kind):")
        for message in shown:
            print("  - " + message)
    print("CHAOS " + ("FAILED" if count else "INTERRUPTED (nothing found so far)" if interrupted else "PASSED"))
    return count


def split_threads(run):
    """(HTTP/1.1 clients, HTTP/2 clients): about a third speak HTTP/2 when the gateway has TLS."""
    h2_threads = round(run.args.threads * run.args.http2_share) if run.tls_h2 is not None else 0
    return run.args.threads - h2_threads, h2_threads


def parse_args(argv):
    p = argparse.ArgumentParser(description="Chaos run against a running gateway and simulator (see scripts/chaos.sh).")
    p.add_argument("--gateway", required=True, help="gateway base URL, https://127.0.0.1:PORT (or http:// for HTTP/1.1 only)")
    p.add_argument("--gateway-ca", help="the gateway's certificate (PEM), trusted by every client (https only)")
    p.add_argument("--http2-share", type=float, default=1 / 3, help="share of the client threads speaking HTTP/2 (https only)")
    p.add_argument("--stall-threads", type=int, default=2, help="hostile HTTP/2 threads whose streams stall (https only)")
    p.add_argument("--head-timeout", type=float, default=3, help="the gateway's listen.requestHeadTimeout, seconds")
    p.add_argument("--idle-timeout", type=float, default=3, help="the gateway's listen.idleTimeout, seconds")
    p.add_argument("--gateway-pid", type=int, required=True)
    p.add_argument("--vb365", required=True, help="simulator VB365 base URL (https)")
    p.add_argument("--vspc", required=True, help="simulator VSPC base URL (https)")
    p.add_argument("--ca", required=True, help="the simulator's CA (PEM)")
    p.add_argument("--callers", required=True, help="JSON: [{id, key, roles, scopes}]")
    p.add_argument("--secrets", required=True, help="label TAB value per line")
    p.add_argument("--log", required=True, help="the gateway's log file")
    p.add_argument("--openapi", default="docs/openapi.yaml")
    p.add_argument("--fixtures", default="config/simulator")
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--max-rss-mb", type=float, default=512)
    p.add_argument("--threads", type=int, default=24)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    if args.gateway.startswith("https:") and not args.gateway_ca:
        p.error("an https gateway needs --gateway-ca")
    if args.gateway.startswith("https:") and h2 is None:
        p.error("HTTP/2 needs the h2 package (python3 -m pip install h2)")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


def main(argv):
    args = parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))  # secret tries are deep
    run = load_run(args)
    shared = Shared(load_secrets(args.secrets))
    alive, started, _ = process_state(args.gateway_pid)
    if not alive:
        print(f"chaos: no gateway process {args.gateway_pid}", file=sys.stderr)
        return 2
    vb365_users = [o["account"]["username"] for o in json.load(open(f"{args.fixtures}/vb365.json", encoding="utf-8"))["organizations"]]
    begin = time.monotonic()
    deadline = begin + args.duration
    monitor = threading.Thread(target=monitor_loop, args=(run, shared, args.gateway_pid, started), daemon=True)
    faults = threading.Thread(target=fault_loop, args=(run, shared, args.seed + 1, vb365_users), daemon=True)
    h1_threads, h2_threads = split_threads(run)
    stall_threads = args.stall_threads if run.tls_h2 is not None else 0
    print(f"chaos: {args.threads} clients: {h1_threads} {HTTP1}{' over TLS' if run.tls else ''}, {h2_threads} {HTTP2}"
          f"; {stall_threads} hostile threads with stalling connections (HTTP/2, some HTTP/1.1); seed {args.seed}", file=sys.stderr)
    clients = [threading.Thread(target=client_loop, args=(run, shared, args.seed + 100 + i, deadline, HTTP2 if i < h2_threads else HTTP1),
                                daemon=True) for i in range(args.threads)]
    clients += [threading.Thread(target=stall_loop, args=(run, shared, args.seed + 1000 + i, deadline), daemon=True)
                for i in range(stall_threads)]
    for thread in [monitor, faults, *clients]:
        thread.start()
    interrupted = False
    try:
        while time.monotonic() < deadline and not shared.stop.is_set():
            shared.stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:  # stop early, still report what was seen
        print("chaos: interrupted", file=sys.stderr)
        interrupted = True
        shared.stop.set()
    for thread in clients:
        thread.join(HANG_SECONDS + 5)
        if thread.is_alive():
            shared.violation("hang", "a client thread is still waiting for an answer after the run")
    elapsed = time.monotonic() - begin
    shared.stop.set()
    faults.join(15)
    monitor.join(5)
    alive, start, rss = process_state(args.gateway_pid)
    if alive and start == started:
        shared.sample_rss(rss, args.max_rss_mb)
    elif not shared.violations["process"]:
        shared.violation("process", f"the gateway process {args.gateway_pid} " + ("was restarted" if alive else "died"))
    log_lines = final_checks(run, shared, alive and start == started)
    failed = report(run, shared, elapsed, log_lines, interrupted)
    return 1 if failed else 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
