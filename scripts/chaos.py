#!/usr/bin/env python3
"""Chaos run against a running VeeamGateway and veeam-sim (scripts/chaos.sh starts both).

Client threads send ordinary and hostile requests over keep-alive connections while a fault
thread changes the simulator every few seconds and a monitor thread watches the gateway process.
Every answer is checked:
  - its status is listed in docs/openapi.yaml for the route and method (unknown paths answering
    404 and wrong methods answering 405 are counted as informational: the document lists neither);
  - errors are application/problem+json with the Problem schema's required members and `status`
    equal to the HTTP status (the /readyz 503 answers the Readiness object); 304 has no body;
    2xx bodies have the media type and required top-level members the document names;
  - nothing that must be refused (a bad credential, a role or scope that may not read it, an
    invalid id or parameter) is answered 2xx or 304, a list shows only what its caller may read,
    and a valid credential is never answered 401 (nor 403 where the role allows);
  - no body holds a secret (passwords, API keys, signing key, upstream tokens known so far).
At the end the simulator's tokens are fetched again, and every kept body and the whole gateway
log are searched for every secret (and the log for the gateway tokens handed out).
Exit status: 0 when nothing was found, 1 on any violation, 2 on a usage error.
Standard library and PyYAML only.
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

HANG_SECONDS = 20  # a request without an answer within this is a hang
MAX_SHOWN = 20  # violations printed
KEEP_BODY_BYTES = 128 << 20  # distinct bodies kept for the final secret search
MIN_SECRET_LENGTH = 12  # shorter strings would match by chance
READERS = frozenset({"PortalAdministrator", "ServiceProviderGlobalAdministrator", "ServiceProviderAdministrator"})
ADMINS = frozenset({"PortalAdministrator"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
BASE_PROBLEM_MEMBERS = ("type", "title", "status", "code")
# Violation kinds, most serious first (the report shows them in this order, round-robin).
KINDS = ("process", "memory", "secret", "hang", "connection", "status", "body", "headers", "access", "simulator", "chaos.py")


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
        parts = ["[^/]+" if p.startswith("{") else re.escape(p) for p in template.split("/")]
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
        self.counts = Counter()  # (route, method, status) -> answers
        self.notes = {}  # (route, method, status) -> informational note
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

    def count(self, route, method, status, note=None):
        with self.lock:
            self.counts[(route, method, status)] += 1
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
    return Run(args, spec, members, callers, tenants, url.hostname, url.port or 80)


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


def make_request(run, shared, rng):
    """One random request, with what its answer must (not) be."""
    kind = rng.choices(["list", "tenant", "upstreams", "purge", "token", "readyz", "healthz", "metrics", "openapi",
                        "unknown", "wrong-method"], weights=[24, 34, 5, 1, 6, 3, 6, 4, 2, 2, 3])[0]
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
    """One keep-alive connection to the gateway; closed after any error and reopened."""

    def __init__(self, host, port):
        self.host, self.port, self.conn = host, port, None

    def send(self, req):
        """An Answer, or a (kind, detail) failure."""
        if self.conn is None:
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


# ---------------------------------------------------------------------------------------------
# Checks on one answer.


def media_type(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


def check(run, shared, req, ans):
    where = f"{req.method} {req.target[:120]}"
    template = run.spec.template(req.target)
    status, key = ans.status, str(ans.status)
    answers = run.spec.operations.get((template, req.method))
    # 1. The status is listed for the route and method (404 on unknown paths and 405 on wrong
    #    methods are informational: the document lists neither).
    expected = None
    if template is None:
        route = "(unknown path)"
        if status == 404:
            shared.count(route, req.method, status, "informational: docs/openapi.yaml lists no unknown paths")
        else:
            shared.count(route, req.method, status)
            shared.violation("status", f"{where}: an unknown path answered {status}, not 404")
    elif answers is None:
        route = template
        if status == 405:
            shared.count(route, req.method, status, "informational: docs/openapi.yaml lists no 405")
            allow = {m.strip().upper() for m in ans.headers.get("allow", "").split(",") if m.strip()}
            if allow != run.spec.methods(template):
                shared.violation("headers", f"{where}: 405 with Allow {sorted(allow)}, the document has {sorted(run.spec.methods(template))}")
        else:
            shared.count(route, req.method, status)
            shared.violation("status", f"{where}: {template} has no {req.method} in the document, yet the answer was {status}, not 405")
    else:
        route = template
        shared.count(route, req.method, status)
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


def client_loop(run, shared, seed, deadline):
    rng = random.Random(seed)
    client = Client(run.host, run.port)
    while not shared.stop.is_set() and time.monotonic() < deadline:
        try:
            req = make_request(run, shared, rng)
            ans = client.send(req)
            if isinstance(ans, Answer):
                if ans.seconds > HANG_SECONDS:
                    shared.violation("hang", f"{req.method} {req.target[:120]}: answered after {ans.seconds:.1f} s")
                check(run, shared, req, ans)
            else:
                kind, detail = ans
                shared.count(run.spec.template(req.target) or "(unknown path)", req.method, kind)
                shared.violation(kind, f"{req.method} {req.target[:120]}: {detail}")
                if not process_state(run.args.gateway_pid)[0]:
                    shared.stop.set()  # the gateway is gone: main() reports it
        except Exception as error:  # a bug in this script: reported, never silent
            shared.violation("chaos.py", f"{type(error).__name__} in a client thread: {error}")
            client.close()
    client.close()


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
        client = Client(run.host, run.port)
        answer = client.send(Request("GET", "/healthz"))
        client.close()
        if not isinstance(answer, Answer) or answer.status != 200:
            shared.violation("process", f"the final /healthz did not answer 200 ({answer.status if isinstance(answer, Answer) else answer[1]})")
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
    return log.count(b"\n")


def report(run, shared, elapsed, log_lines, interrupted=False):
    rows = sorted(shared.counts.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))
    total = sum(shared.counts.values())
    width = max([len(r[0][0]) for r in rows] + [len("route")])
    print(f"\n{'route'.ljust(width)}  {'method':6}  {'status':10}  {'count':>8}")
    for (route, method, status), n in rows:
        note = shared.notes.get((route, method, status), "")
        print(f"{route.ljust(width)}  {method:6}  {str(status):10}  {n:>8}  {note}".rstrip())
    print(f"\n{total} requests in {elapsed:.0f} s ({total / max(elapsed, 0.001):.0f}/s), {run.args.threads} clients, seed {run.args.seed}")
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


def parse_args(argv):
    p = argparse.ArgumentParser(description="Chaos run against a running gateway and simulator (see scripts/chaos.sh).")
    p.add_argument("--gateway", required=True, help="gateway base URL, http://127.0.0.1:PORT")
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
    clients = [threading.Thread(target=client_loop, args=(run, shared, args.seed + 100 + i, deadline), daemon=True)
               for i in range(args.threads)]
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
