#!/usr/bin/env python3
"""Validates what veeam-sim sends against the published upstream schemas.

Starts the simulator once per VB365 API version (v5, v6, v7, v8) and once per VSPC dialect
(seed, 3.6.1), calls every covered endpoint over HTTPS (verifying with the CA the simulator
writes) and validates each JSON body:
  - VB365 v6/v7/v8 against specs/upstream/vb365_rest_v6.json, _v7.json, _v8.json (verbatim copies of
    ../shared/upstream-specs, kept in the repository so that CI needs nothing beside it)
    (OpenAPI 3.0.1, verbatim). The schema is the spec's own
    paths[path][method].responses[status, else "default"].content[...].schema, checked with
    openapi_schema_validator's OAS30ReadValidator (OAS30Validator in the response direction:
    a required member must be present even if readOnly, a writeOnly member must be absent) and
    the OAS 3.0 format checker (date-time, uuid, int32, int64). Every _links.*.href and
    _actions.*.uri must name the version being served (/vN/).
    Routes: token (password, refresh_token, wrong password), Organization, Organizations (v8:
    its pages), one organization, ServiceInstance, Health (v8); and the pass-through collections
    (docs/simulator.md), each read with every organization's own token and with the
    administrator's (config/simulator/vb365.json): Jobs, Jobs/{jobId}, JobSessions,
    RestorePoints, LicensedUsers, License, BackupRepositories, Proxies and
    Organizations/{id}/Users|Groups|Sites|Teams|LicensingInformation (the administrator: every
    organization's); POST Jobs/{jobId}/start with {"full": false} (a RESTStartJobOptions,
    checked against the spec first), whose answer must be the spec's own 2xx (v6/v7: 204
    NoContent, no body; v8: 200 RESTJobSession); another organization's Jobs/{jobId} and its
    start with each organization's token: 403, against the spec's default (RESTExceptionInfo).
  - VSPC (dialect 3.6.1) against specs/upstream/vspc_v3_relevant_extract.RECONSTRUCTED.json,
    converted from its shorthand to JSON Schema 2020-12 (see `vspc_schemas`); the response shape
    of each operation comes from the file's own "paths" entries: token, users/me, about,
    tenants (their pages, each one, an unknown uid, no bearer, a refused role).
  - VSPC's pass-through collections (PASS_THROUGH_VSPC: companies and one company, backup server
    jobs, active alarms, license usage by organization, VB365 servers, their organizations and
    company mappings, and the activity log, after one tenant is created through the simulator's
    admin API so that it has a record), which the reconstruction lacks, against JSON Schemas written here from
    the models of the published veeam-spc package, veeam_spc/v3_6_1/models (SPC_MODELS: the
    members from_dict requires, each member's JSON type, nullability and the enums' values) in
    the Get…Response200 envelope ({data, meta?, errors?}; a list must carry meta.pagingInfo),
    each list walked in pages of PAGE (pagingInfo, union = list); an unknown and a malformed
    companyUid, a refused role and an unknown /api/v3 path against the models' ErrorResponse.
What it cannot check:
  - VB365 v5 has no published spec: only that the routes answer 200 (and the link versions); the
    403s and the start (v6+) are not called there.
  - Which objects a token sees (confinement), what the collections hold and whether a start
    starts anything: only shapes and statuses. Members a schema does not name are allowed, as
    OAS and the veeam-spc models (additional_properties) allow them: a misspelt optional member
    passes unnoticed.
  - The VSPC file is a hand-made reconstruction, not the vendor's spec: where it is vague (User's
    profile, status, credentials) only "is an object/string" is checked, and its schemas require
    little (OAuth2Result, About and ErrorResponse require nothing at all).
  - The veeam-spc models are generated from the vendor's OpenAPI document but are not it: formats
    other than uuid/date-time (int64, …) and bounds are not in them; `_embedded` (only sent with
    `expand`) is checked as an object only; ErrorResponse requires nothing (a 404 without
    `errors` passes, noted).
  - The seed dialect imitates older servers (lower-camel enums, null throttlingUnit), to which the
    3.6.1 models do not apply: only the envelope shape is checked (also for the pass-through
    collections, which the simulator serves alike in both dialects).
Usage (from the repository root):  scripts/validate-simulator.py [BIN] [--only vb365:v8] [--only vspc]
BIN defaults to $SIM_BIN (e.g. .build/debug/veeam-sim). Exit 0: no violation; 1: any; 2: usage.
Needs: pip install jsonschema openapi-schema-validator rfc3339-validator (date-time checks).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS30ReadValidator, OAS30Validator, oas30_format_checker

REPO = Path(__file__).resolve().parent.parent
TARGETS = [("vb365", "v5"), ("vb365", "v6"), ("vb365", "v7"), ("vb365", "v8"), ("vspc", "seed"), ("vspc", "3.6.1")]
NOTES = {
    "vb365:v5": "v5: no published schema; routes only",
    "vspc:seed": "seed: envelope only (older servers; 3.6.1 models do not apply)",
}
START_SECONDS = 20
PAGE = 2


@dataclass
class Check:
    endpoint: str
    status: object  # int, or "-" when no answer
    schema: str  # what the body was checked against ("-": status only)
    ok: bool
    message: str = ""


@dataclass
class Target:
    name: str  # "vb365:v8"
    port: int = 0
    ctx: ssl.SSLContext = None
    checks: list = field(default_factory=list)
    bodies: list = field(default_factory=list)  # (endpoint, body) of every JSON answer

    def add(self, endpoint, status, schema, ok, message=""):
        self.checks.append(Check(endpoint, status, schema, ok, message))

    def http(self, method, path, form=None, bearer=None, json_body=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        if json_body is not None:
            data = json.dumps(json_body).encode()
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if form is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if json_body is not None:
            request.add_header("Content-Type", "application/json")
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx))
        try:
            with opener.open(request, timeout=15) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def fetch(self, method, path, expect=(200,), label="", empty_ok=False, **kwargs):
        """One call. Records a failing Check (and returns body None) when the status is not in
        `expect`, the body is empty (unless `empty_ok`) or not JSON."""
        endpoint = f"{method} {path}" + (f"  [{label}]" if label else "")
        try:
            status, raw = self.http(method, path, **kwargs)
        except (OSError, http.client.HTTPException) as error:
            self.add(endpoint, "-", "-", False, f"transport: {error}")
            return endpoint, "-", None
        wanted = f"{expect.start // 100}xx" if isinstance(expect, range) else "/".join(map(str, expect))
        if status not in expect:
            self.add(endpoint, status, "-", False, f"expected {wanted}, got {status}: {raw[:200]!r}")
            return endpoint, status, None
        if not raw.strip():
            self.add(endpoint, status, "-", empty_ok, f"empty {status}, no body to validate" if empty_ok else "empty body")
            return endpoint, status, None
        try:
            body = json.loads(raw)
        except ValueError as error:
            self.add(endpoint, status, "-", False, f"not JSON ({error}): {raw[:200]!r}")
            return endpoint, status, None
        self.bodies.append((endpoint, body))
        return endpoint, status, body

    def judge(self, endpoint, status, schema_label, validator, body, note=""):
        errors = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        lines = [describe(e) for e in errors[:6]] + ([f"… {len(errors) - 6} more"] if len(errors) > 6 else [])
        self.add(endpoint, status, schema_label, not errors, "; ".join(lines) or note)
        return not errors


def describe(error):
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    message = error.message if len(error.message) <= 200 else f"a {type(error.instance).__name__} fails {error.validator}: {json.dumps(error.validator_value)[:120]}"
    text = f"{where}: {message}"
    if error.validator == "enum" and error.instance is None and isinstance(error.schema, dict) and error.schema.get("nullable"):
        text += " [nullable enum: OAS 3.0.3 adds null to `type` only, not to `enum`; omit it or send a listed value]"
    return text


# ---------------------------------------------------------------------------------------------
# The simulator process.


class SimulatorError(Exception):
    pass


@contextmanager
def simulator(binary, vb365_api, dialect):
    """Starts veeam-sim on free ports; yields (ports, ssl context). Always stops it."""
    work = Path(tempfile.mkdtemp(prefix="validate-sim-"))
    ports_file, ca_file, log_file = work / "ports.json", work / "ca.pem", work / "sim.log"
    command = [binary, "--vb365-port", "0", "--vspc-port", "0", "--write-ports", str(ports_file), "--write-ca", str(ca_file),
               "--vb365-api", vb365_api, "--dialect", dialect]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise SimulatorError(f"exited with {process.returncode}: {log_file.read_text(errors='replace')[-600:].strip()}")
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                    if isinstance(ports.get("vb365"), int) and isinstance(ports.get("vspc"), int):
                        break
                except ValueError:
                    pass  # written atomically, but keep polling rather than trust it
            if time.monotonic() > deadline:
                raise SimulatorError(f"no usable {ports_file.name} after {START_SECONDS} s: {log_file.read_text(errors='replace')[-600:].strip()}")
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(ca_file))  # check_hostname and CERT_REQUIRED
        yield ports, context
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# VB365.


def oas_response(spec, path, method, status):
    """(label, schema) the spec gives for this answer: responses[status], else "default"."""
    responses = spec["paths"][path][method]["responses"]
    key = str(status) if str(status) in responses else "default"
    content = responses.get(key, {}).get("content") or {}
    media = content.get("application/json") or content.get("*/*") or next(iter(content.values()), None)
    if media is None:
        return f"(spec: no body for {key})", None
    schema = media["schema"]
    name = lambda s: s["$ref"].rsplit("/", 1)[-1] if "$ref" in s else s.get("type", "?")
    label = f"{name(schema['items'])}[]" if schema.get("type") == "array" and "items" in schema else name(schema)
    return f"{label} ({key})", schema


def required_query(spec, path, method):
    """Query parameters the spec marks required, set to their default (v6: extendedView=true)."""
    operation = spec["paths"][path][method]
    query = {}
    for parameter in spec["paths"][path].get("parameters", []) + operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("required"):
            value = parameter.get("schema", {}).get("default", True)
            query[parameter["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return query


def vb365_check(target, spec, path, method, endpoint, status, body):
    label, schema = oas_response(spec, path, method, status)
    if schema is None:
        target.add(endpoint, status, label, False, "the spec declares no body for this status")
        return False
    validator = OAS30ReadValidator(dict(schema, components=spec["components"]), format_checker=oas30_format_checker)
    note = ""
    if label.startswith("RESTExceptionInfo") and isinstance(body, dict) and "message" not in body:
        note = "passes only because RESTExceptionInfo requires nothing: no `message`"
    return target.judge(endpoint, status, label, validator, body, note)


def check_links(target, version):
    """Every _links.*.href and _actions.*.uri names /vN/ and no other version."""
    bad, count = [], 0

    def walk(node, endpoint):
        nonlocal count
        if isinstance(node, list):
            for item in node:
                walk(item, endpoint)
        elif isinstance(node, dict):
            for key, attribute in (("_links", "href"), ("_actions", "uri")):
                for name, link in (node.get(key) or {}).items() if isinstance(node.get(key), dict) else ():
                    if isinstance(link, dict) and attribute in link:
                        count += 1
                        uri = str(link[attribute])
                        if f"/{version}/" not in uri or set(re.findall(r"/v\d+/", uri)) != {f"/{version}/"}:
                            bad.append(f"{endpoint}: {key}.{name}.{attribute} = {uri}")
            for value in node.values():
                walk(value, endpoint)

    for endpoint, body in target.bodies:
        walk(body, endpoint.split("  [")[0])
    target.add("(every body above)", "-", f"links name /{version}/", not bad, "; ".join(sorted(set(bad))[:6]) or f"{count} links checked")


def run_vb365(target, version, specs):
    fixtures = json.loads((REPO / "config/simulator/vb365.json").read_text())
    accounts = [o["account"] for o in fixtures["organizations"]]
    admin = fixtures["administrators"][0]
    base = f"/{version}"
    if version == "v5":  # no published spec: the routes answer, nothing more
        def v5_login(account):
            form = {"grant_type": "password", "username": account["username"], "password": account["password"]}
            endpoint, status, body = target.fetch("POST", f"{base}/Token", label=account["username"], form=form)
            token = body.get("access_token") if isinstance(body, dict) else None
            if body is not None:
                target.add(endpoint, status, "(none: routes only)", bool(token), "" if token else "no access_token")
            return token

        def v5_get(path, template, expect=(200,), label="", bearer=None):
            endpoint, status, body = target.fetch("GET", path, expect=expect, label=label, bearer=bearer)
            if body is not None:
                target.add(endpoint, status, "(none: routes only)", True)
            return body

        v5_tokens = {a["username"]: v5_login(a) for a in accounts}
        first_token = v5_tokens[accounts[0]["username"]]
        if first_token:
            v5_get(f"{base}/Organization", None, label=accounts[0]["username"], bearer=first_token)
        sessions = [(a["username"], v5_tokens[a["username"]], o["organization"]["id"]) for a, o in zip(accounts, fixtures["organizations"])]
        vb365_pass_through(target, base, v5_get, None, [s for s in sessions if s[1]], v5_login(admin))
        check_links(target, version)
        return

    spec = json.loads((specs / f"vb365_rest_{version}.json").read_text())
    token_path = f"{base}/token"
    form_fields = spec["paths"][token_path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    extra = {"disable_antiforgery_token": "true"} if "disable_antiforgery_token" in form_fields else {}  # v7+

    def login(account, expect=(200,), password=None, label=None):
        form = {"grant_type": "password", "username": account["username"], "password": password or account["password"], **extra}
        endpoint, status, body = target.fetch("POST", token_path, expect=expect, label=label or account["username"], form=form)
        if body is not None:
            vb365_check(target, spec, token_path, "post", endpoint, status, body)
        return body if isinstance(body, dict) and status == 200 else {}

    tokens = {a["username"]: login(a) for a in accounts}
    admin_token = login(admin).get("access_token")
    login(admin, expect=range(400, 500), password="wrong-password", label="wrong password")
    first = tokens[accounts[0]["username"]]
    refreshed = {}
    if first.get("refresh_token"):
        endpoint, status, refreshed = target.fetch("POST", token_path, label="refresh_token grant",
                                                   form={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
        if refreshed is not None:
            vb365_check(target, spec, token_path, "post", endpoint, status, refreshed)

    def get(path, template, expect=(200,), label="", bearer=None, empty_ok=False, query=None):
        query = {**required_query(spec, template, "get"), **(query or {})}
        full = path + ("?" + urllib.parse.urlencode(query) if query else "")
        endpoint, status, body = target.fetch("GET", full, expect=expect, label=label, bearer=bearer, empty_ok=empty_ok)
        if body is not None:
            vb365_check(target, spec, template, "get", endpoint, status, body)
        return body

    org_path = f"{base}/Organization"
    for account in accounts:
        get(org_path, org_path, label=account["username"], bearer=tokens[account["username"]].get("access_token"))
    get(org_path, org_path, expect=range(400, 500), label="administrator", bearer=admin_token)
    get(org_path, org_path, expect=(401,), label="no bearer", empty_ok=True)
    get(org_path, org_path, expect=(401,), label="invalid bearer", bearer="not-a-valid-token", empty_ok=True)

    list_path = f"{base}/Organizations"
    listing = get(list_path, list_path, label="administrator", bearer=admin_token)
    if "extendedView" not in required_query(spec, list_path, "get"):  # v7+: false by default; also check the backup fields
        get(list_path, list_path, label="administrator", bearer=admin_token, query={"extendedView": "true"})
    everything = (listing.get("results") if isinstance(listing, dict) else listing) or []
    if version == "v8":  # PageOfRestOrganizationComposed: walk limit=2 pages
        seen, offset, problems = [], 0, []
        for _ in range(1000):
            page = get(list_path, list_path, label=f"page offset {offset}", bearer=admin_token, query={"limit": PAGE, "offset": offset})
            if not isinstance(page, dict):
                problems.append(f"offset {offset}: no page")
                break
            if page.get("offset") != offset or page.get("limit") != PAGE:
                problems.append(f"asked offset={offset} limit={PAGE}, got offset={page.get('offset')} limit={page.get('limit')}")
            results = page.get("results") or []
            seen += [r.get("id") for r in results if isinstance(r, dict)]
            if len(results) < PAGE:
                break
            offset += PAGE
        ids = [r.get("id") for r in everything if isinstance(r, dict)]
        if seen != ids:
            problems.append(f"pages hold {seen}, the full list {ids}")
        target.add(f"GET {list_path}?limit={PAGE}&offset=0,{PAGE},…", "-", "(paging: offset/limit echoed, union = list)", not problems, "; ".join(problems))
    if everything and isinstance(everything[0], dict) and everything[0].get("id"):
        one = everything[0]["id"]
        get(f"{list_path}/{one}", f"{list_path}/{{organizationId}}", label="administrator", bearer=admin_token)

    instance = f"{base}/ServiceInstance"
    bearer = (refreshed or {}).get("access_token") or admin_token
    get(instance, instance, label="refreshed bearer" if (refreshed or {}).get("access_token") else "administrator", bearer=bearer)
    if f"{base}/Health" in spec["paths"]:  # v8; x-anonymous in the spec
        get(f"{base}/Health", f"{base}/Health", label="no bearer")

    start_template = f"{base}/Jobs/{{jobId}}/start"
    start_responses = spec["paths"][start_template]["post"]["responses"]
    started = tuple(sorted(int(k) for k in start_responses if k.isdigit() and 200 <= int(k) < 300))
    options_schema = spec["paths"][start_template]["post"]["requestBody"]["content"]["application/json"]["schema"]
    options = {"full": False}  # a minimal RESTStartJobOptions; checked against the spec before it is sent
    OAS30Validator(dict(options_schema, components=spec["components"]), format_checker=oas30_format_checker).validate(options)

    def start(job_id, label, bearer, expect=None):
        """POST …/Jobs/{jobId}/start: the spec's own 2xx (v6/v7: 204 without a body; v8: 200
        RESTJobSession), or `expect` (403) against its default schema."""
        path = f"{base}/Jobs/{job_id}/start"
        endpoint, status, body = target.fetch("POST", path, expect=expect or range(200, 300), label=label, bearer=bearer,
                                              json_body=options, empty_ok=not expect and 204 in started)
        if expect is None and isinstance(status, int) and 200 <= status < 300 and status not in started:
            declared = " or ".join(f"{code} {start_responses[str(code)].get('description', '')}".strip() for code in started)
            target.add(endpoint, status, f"(spec: {'/'.join(map(str, started))} only)", False,
                       f"the {version} spec's only success answer is {declared}" + (" (no body)" if started == (204,) else "")
                       + f", not {status}" + (" with a body" if body is not None else ""))
        elif body is not None:
            vb365_check(target, spec, start_template, "post", endpoint, status, body)

    sessions = [(a["username"], tokens[a["username"]].get("access_token"), o["organization"]["id"]) for a, o in zip(accounts, fixtures["organizations"])]
    vb365_pass_through(target, base, get, start, [s for s in sessions if s[1]], admin_token)
    check_links(target, version)


PASS_THROUGH = ["JobSessions", "RestorePoints", "LicensedUsers", "License", "BackupRepositories", "Proxies"]
ORGANIZATION_PASS_THROUGH = ["Users", "Groups", "Sites", "Teams", "LicensingInformation"]


def vb365_pass_through(target, base, get, start, sessions, admin_token):
    """The pass-through collections (docs/simulator.md), read as each organization's own account
    (sessions: (username, token, organization id)) and as the administrator (every organization):
    Jobs, one job, its start (`start`: None in v5), the server-wide and per-job collections, and
    the organization's Users/Groups/Sites/Teams/LicensingInformation; then another organization's
    job (GET and start) with each organization's token, which must be 403."""
    jobs_of = {}
    readers = [(user, token, [organization]) for user, token, organization in sessions]
    if admin_token:
        readers.append(("administrator", admin_token, [organization for _, _, organization in sessions]))
    for label, token, organizations in readers:
        listing = get(f"{base}/Jobs", f"{base}/Jobs", label=label, bearer=token)
        items = listing if isinstance(listing, list) else (listing.get("results") if isinstance(listing, dict) else None) or []
        jobs_of[label] = [j["id"] for j in items if isinstance(j, dict) and j.get("id")]
        if jobs_of[label]:
            get(f"{base}/Jobs/{jobs_of[label][0]}", f"{base}/Jobs/{{jobId}}", label=label, bearer=token)
            if start:
                start(jobs_of[label][0], label, token)
        elif listing is not None:
            target.add(f"GET {base}/Jobs  [{label}]", 200, "(a job to read)", False, "no job listed: Jobs/{jobId} and its start not called")
        for name in PASS_THROUGH:
            get(f"{base}/{name}", f"{base}/{name}", label=label, bearer=token)
        for organization in organizations:
            for name in ORGANIZATION_PASS_THROUGH:
                get(f"{base}/Organizations/{organization}/{name}", f"{base}/Organizations/{{organizationId}}/{name}", label=label, bearer=token)
    if start is None:  # v5: status only, and no refusal is documented for it
        return
    for index, (user, token, _) in enumerate(sessions):
        other = sessions[(index + 1) % len(sessions)][0]
        if other != user and jobs_of.get(other):
            label = f"{user}, another organization's job"
            get(f"{base}/Jobs/{jobs_of[other][0]}", f"{base}/Jobs/{{jobId}}", expect=(403,), label=label, bearer=token)
            start(jobs_of[other][0], label, token, expect=(403,))


# ---------------------------------------------------------------------------------------------
# VSPC: the reconstructed file's shorthand, converted to JSON Schema 2020-12.
#
#   "string", "integer", "boolean", "object|array"   -> that type (or types)
#   "string|null"                                    -> nullable string (a "(…)" note is dropped)
#   "string|null (write)"                            -> null: written only, so a read has null or nothing
#   "date-time", "uuid", "uuid (as grant…)"          -> string with that format
#   "string base64 (public_key)"                     -> string (base64 is not checked)
#   "UserRole", {"$ref": "OwnerCredentials"}          -> $ref to that definition
#   "CredentialsInfo" (named, but not defined)        -> object      (too vague: object only)
#   "UserProfile {firstName,…}"                       -> object      (member types not given)
#   "enum", "enum UserStatus default Enabled"         -> string      (values not listed)
#   {type, format, items, enum, properties, required, minimum, maximum, nullable}: as JSON Schema;
#   enum lists are exhaustive (x-extensible-enum "Unknown" is in the lists already).
# Nullable only where it says nullable: true, "|null", or x-veeam-nullable: true (Veeam's own
# marker, on the envelope's `errors`). default/note/description/readOnly/docs_extra_props/example
# are documentation. Anything else raises, so a change to the file cannot be skipped silently.

PRIMITIVES = {"string", "integer", "boolean", "number", "object", "array", "null"}
FORMATS = {"date-time", "uuid"}
DOC_KEYS = {"default", "note", "description", "readOnly", "docs_extra_props", "example"}


def definition_name(key):
    return re.sub(r"\(.*\)$", "", key).strip()  # "ResponseEnvelope(generic)" -> "ResponseEnvelope"


def shorthand(text, names):
    if text.endswith("(write)"):  # written only: on a read null or absent (as OAS30ReadValidator treats writeOnly)
        return {"type": "null"}
    core = re.sub(r"\s*\(.*\)\s*$", "", text).strip()
    if core == "enum" or core.startswith("enum "):
        return {"type": "string"}
    if "{" in core:
        return {"type": "object"}
    parts = core.split("|")
    if all(p in PRIMITIVES | FORMATS for p in parts):
        types = ["string" if p in FORMATS else p for p in parts]
        out = {"type": types[0] if len(types) == 1 else types}
        out.update({"format": p for p in parts if p in FORMATS})
        return out
    first = core.split()[0]
    if first in PRIMITIVES | FORMATS and len(parts) == 1:
        return shorthand(first, names)
    if core in names:
        return {"$ref": f"#/$defs/{core}"}
    if re.fullmatch(r"[A-Z]\w*", core):
        return {"type": "object"}
    raise ValueError(f"unknown shorthand: {text!r}")


def convert(node, names):
    if isinstance(node, str):
        return shorthand(node, names)
    unknown = set(node) - DOC_KEYS - {"$ref", "nullable", "x-veeam-nullable", "enum", "type", "format", "items", "properties", "required", "minimum", "maximum"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in {node}")
    if "$ref" in node:
        out = {"$ref": f"#/$defs/{node['$ref']}"}
    elif "enum" in node:
        out = {"enum": list(node["enum"])}
    elif "type" in node:
        out = {"type": node["type"]}
    elif "properties" in node or "required" in node:
        out = {"type": "object"}
    else:
        raise ValueError(f"cannot convert {node}")
    for key in ("format", "minimum", "maximum", "required"):
        if key in node:
            out[key] = node[key]
    if "items" in node:
        out["items"] = convert(node["items"], names)
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: convert(v, names) for k, v in node["properties"].items()}
    if node.get("nullable") is True or node.get("x-veeam-nullable") is True:
        if "$ref" in out:
            out = {"anyOf": [out, {"type": "null"}]}
        elif "enum" in out:
            out["enum"].append(None)
        else:
            out["type"] = [out["type"], "null"]
    return out


def vspc_schemas(document):
    """({name: JSON Schema}, shape) where shape(text) converts a paths-entry response such as
    "{meta: ResponseMetadata, data: CloudTenant[], errors?: ResponseError[]}" (a name without
    "?" is required; an untyped member takes the generic envelope's type) or "OAuth2Error"."""
    raw = {definition_name(k): v for k, v in document["definitions"].items() if isinstance(v, dict)}
    names = set(raw)
    defs = {name: convert(body, names) for name, body in raw.items()}
    generic = defs["ResponseEnvelope"]

    def shape(text):
        text = re.sub(r"\s*\(.*\)\s*$", "", text).strip()
        if not text.startswith("{"):
            return {"$defs": defs, **shorthand(text, names)}
        properties, required = {}, []
        for member in text.strip("{}").split(","):
            name, _, type_text = (part.strip() for part in member.partition(":"))
            optional = name.endswith("?")
            name = name.rstrip("?")
            if not optional:
                required.append(name)
            if not type_text:
                properties[name] = generic["properties"][name]
            elif type_text.endswith("[]"):
                properties[name] = {"type": "array", "items": shorthand(type_text[:-2], names)}
            else:
                properties[name] = shorthand(type_text, names)
        return {"$defs": defs, "allOf": [{"$ref": "#/$defs/ResponseEnvelope"}, {"type": "object", "required": required, "properties": properties}]}

    return defs, shape


# ---------------------------------------------------------------------------------------------
# VSPC: the pass-through collections, against schemas written here from the models of the
# published veeam-spc package (veeam_spc/v3_6_1/models/*.py), which the reconstructed file lacks.
#
#   {"member": "type"}: "member!" is required (the model's from_dict pops it without a default;
#   the others may be absent: Unset). Types: "string", "integer", "number", "boolean", "object",
#   "uuid" / "date-time" (strings: UUID(…) and isoparse(…) in from_dict), a model or enum named
#   below, "[T]" an array of T; a trailing "?" admits null (the model's Union[None, …]).
#   Members the models keep as additional_properties are allowed, as from_dict keeps them.
#   Enums are the models' (str, Enum) classes: from_dict raises on any other value.
#   `_embedded` (sent only with `expand`) is "object" here, not its models' tree.

SPC_MODELS = {
    "ResponseError": {"message!": "string", "type!": "ResponseErrorType", "code!": "integer"},
    "ErrorResponse": {"errors": "[ResponseError]"},
    "PagingInformation": {"total!": "integer", "count!": "integer", "offset!": "integer"},
    "ResponseMetadata": {"pagingInfo": "PagingInformation"},
    # company.py, owner_credentials.py, company_services.py, company_hosted_services.py,
    # company_remote_services.py, company_*_management_type_0.py
    "Company": {
        "ownerCredentials!": "OwnerCredentials", "instanceUid": "uuid", "name": "string", "status": "CompanyStatus",
        "resellerUid": "uuid?", "subscriptionPlanUid": "uuid?", "isRestAccessEnabled": "boolean", "isAlarmDetectEnabled": "boolean",
        "companyServices": "CompanyServices", "loginUrl": "string?", "_embedded": "object?"},
    "OwnerCredentials": {"userName!": "string", "password": "string?"},
    "CompanyServices": {"hostedServices": "CompanyHostedServices", "remoteServices": "CompanyRemoteServices"},
    "CompanyHostedServices": {"isVbPublicCloudManagementEnabled": "boolean"},
    "CompanyRemoteServices": {
        "isBackupResourcesEnabled": "boolean", "backupAgentsManagement": "CompanyBackupAgentsManagement?",
        "backupServersManagement": "CompanyBackupServerManagement?", "vb365ServersManagement": "CompanyVb365ServerManagement?",
        "isVbPublicCloudManagementEnabled": "boolean"},
    "CompanyBackupAgentsManagement": {"workstationAgentsQuota": "integer?", "serverAgentsQuota": "integer?"},
    "CompanyBackupServerManagement": {"backupServerQuota": "integer?"},
    "CompanyVb365ServerManagement": {"backupServerQuota": "integer?"},
    # backup_server_job*.py
    "BackupServerJob": {
        "status!": "BackupServerJobStatus", "isEnabled!": "boolean", "instanceUid": "uuid", "uniqueUid": "uuid", "name": "string",
        "description": "string", "createdBy": "string", "creationTime": "date-time?", "backupServerUid": "uuid", "locationUid": "uuid",
        "siteUid": "uuid?", "organizationUid": "uuid", "mappedOrganizationUid": "uuid?", "type": "BackupServerJobType",
        "lastRun": "date-time?", "lastEndTime": "date-time?", "lastDuration": "integer?", "processingRate": "number?",
        "avgDuration": "integer?", "transferredData": "integer?", "backupChainSize": "integer?", "bottleneck": "BackupServerJobBottleneck",
        "scheduleType": "BackupServerJobScheduleType", "schedule": "BackupServerJobSchedule", "failureMessage": "string?",
        "targetType": "BackupServerJobTargetType", "destination": "string?", "retentionLimit": "integer?",
        "retentionLimitType": "BackupServerJobRetentionLimitType", "isGfsOptionEnabled": "boolean",
        "lastSessionTasks": "[BackupServerJobSessionTask]"},
    "BackupServerJobSessionTask": {
        "instanceUid": "uuid", "objectUid": "uuid?", "objectName": "string?", "totalObjects": "integer?", "processedObjects": "integer?",
        "readDataSize": "integer?", "transferredDataSize": "integer?", "startTime": "date-time?", "endTime": "date-time?",
        "duration": "integer?", "failureMessages": "[string]?", "status": "BackupServerJobSessionTaskStatus"},
    "BackupServerJobSchedule": {
        "startDateTime": "date-time?", "startDateTimeUtc": "date-time?", "dailyScheduleOptions": "BackupServerJobScheduleOptionsDaily",
        "monthlyScheduleOptions": "BackupServerJobScheduleOptionsMonthly",
        "periodicallyScheduleOptions": "BackupServerJobScheduleOptionsPeriodically",
        "backupWindowOptions": "BackupServerJobScheduleOptionsBackupWindow", "continuousScheduleEnabled": "boolean",
        "chainingOptions": "BackupServerJobScheduleOptionsChaining"},
    "BackupServerJobScheduleOptionsDaily": {"kind": "BackupServerJobScheduleOptionsDailyKind", "days": "[DaysOfWeek]?", "time": "string?", "timeUtc": "string?"},
    "BackupServerJobScheduleOptionsMonthly": {
        "time": "string?", "timeUtc": "string?", "dayNumberInMonth": "BackupServerJobScheduleOptionsMonthlyDayNumberInMonth",
        "dayOfWeek": "DaysOfWeek", "months": "[Month]?"},
    "BackupServerJobScheduleOptionsPeriodically": {
        "kind": "BackupServerJobScheduleOptionsPeriodicallyKind", "fullPeriod": "integer?", "schedule": "[BackupServerJobTimePeriod]?"},
    "BackupServerJobScheduleOptionsBackupWindow": {"timePeriods": "[BackupServerJobTimePeriod]?"},
    "BackupServerJobTimePeriod": {"day": "DaysOfWeek", "hours": "[integer]?"},
    "BackupServerJobScheduleOptionsChaining": {"previousJobId": "uuid?", "previousJobName": "string?"},
    # active_alarm.py, alarm_object.py, alarm_activation.py
    "ActiveAlarm": {
        "instanceUid": "uuid", "alarmTemplateUid": "uuid", "repeatCount": "integer", "object": "AlarmObject",
        "lastActivation": "AlarmActivation", "area": "ActiveAlarmArea"},
    "AlarmObject": {
        "instanceUid": "uuid", "type": "AlarmObjectType", "organizationUid": "uuid", "locationUid": "uuid?", "managementAgentUid": "uuid?",
        "computerName": "string", "objectUid": "uuid?", "objectName": "string?"},
    "AlarmActivation": {"instanceUid": "uuid", "time": "date-time", "status": "AlarmActivationStatus", "message": "string?", "remark": "string?"},
    # organization_current_license_usage.py, server_current_license_usage.py, current_license_usage_workload*.py
    "OrganizationCurrentLicenseUsage": {
        "organizationUid": "uuid", "organizationType": "LicenseUsageOrganizationType", "providerUid": "uuid?",
        "servers": "[ServerCurrentLicenseUsage]"},
    "ServerCurrentLicenseUsage": {"serverUid": "uuid", "serverType": "ServerCurrentLicenseUsageServerType", "workloads": "[CurrentLicenseUsageWorkload]"},
    "CurrentLicenseUsageWorkload": {
        "id!": "uuid", "description!": "string", "unitType!": "CurrentLicenseUsageWorkloadUnitType", "rentalUnits!": "number",
        "newUnits!": "number", "usedUnits!": "number", "rentalCount!": "integer", "newCount!": "integer", "usedCount!": "integer",
        "workloadsByPlatform!": "[CurrentLicenseUsageWorkloadByPlatform]"},
    "CurrentLicenseUsageWorkloadByPlatform": {
        "typeId!": "string", "description!": "string", "weight!": "number", "rentalUnits!": "number", "newUnits!": "number",
        "usedUnits!": "number", "rentalCount!": "integer", "newCount!": "integer", "usedCount!": "integer"},
    # vb_365_server.py
    "Vb365Server": {
        "instanceUid": "uuid?", "locationUid": "uuid", "organizationUid": "uuid", "managementAgentUid": "uuid", "installationUid": "uuid?",
        "name": "string", "version": "string", "majorVersion": "integer", "serverApiVersion": "Vb365ServerServerApiVersion",
        "status": "Vb365ServerStatus", "managementAgentStatus": "ManagementAgentStatus"},
    # vb_365_organization_base.py
    "Vb365OrganizationBase": {
        "name!": "string", "type!": "Vb365OrganizationBaseType", "isBackedUp!": "boolean", "instanceUid": "uuid",
        "region": "Vb365OrganizationRegion", "cloudAuthenticatedMethod": "Vb365OrganizationBaseCloudAuthenticatedMethod",
        "protectedServices": "[Vb365OrganizationBaseProtectedServicesItem]", "vb365ServerUid": "uuid", "vb365ServerName": "string",
        "locationUid": "uuid?", "locationName": "string?", "firstBackupTime": "date-time?", "lastBackupTime": "date-time?",
        "registeredBy": "string?", "registrationDate": "date-time?", "isRemoving": "boolean", "isJobSchedulingEnabled": "boolean?",
        "mappedOrganizationUid": "uuid?", "mappedOrganizationName": "string?", "_embedded": "object"},
    # vb_365_organization_to_company_mapping.py
    "Vb365OrganizationToCompanyMapping": {
        "vb365OrganizationUid!": "uuid", "companyUid!": "uuid", "instanceUid": "uuid", "vb365OrganizationName": "string",
        "vb365ServerUid": "uuid", "vb365ServerName": "string", "companyName": "string"},
    # activity_log.py (activity_log_type.py, activity_log_kind.py): every member may be Unset
    "ActivityLog": {
        "message": "string", "activityLogType": "ActivityLogType", "activityKind": "ActivityLogKind", "date": "date-time",
        "userUid": "uuid?", "organizationUid": "uuid?"},
}
SPC_ENUMS = {
    "ResponseErrorType": ["logical", "retryableLogical", "security", "transport", "unspecified"],
    "CompanyStatus": ["Active", "Disabled", "REMOVED_Creating", "REMOVED_Deleted", "REMOVED_Deleting", "REMOVED_Expired", "REMOVED_SiteResourceCreating",
                      "REMOVED_SiteResourceCreationFailed", "REMOVED_SiteResourceUpdateFailed", "REMOVED_SiteResourceUpdating", "Unknown"],
    "BackupServerJobStatus": ["Disabling", "Enabling", "Failed", "Idle", "None", "Running", "Starting", "Stopping", "Success", "Unknown",
                              "WaitingRepository", "WaitingTape", "Warning"],
    "BackupServerJobType": ["AgentBackupJob", "AgentPolicy", "AhvStorageSnapshotJob", "AwsBackupJob", "AzureBackupJob", "BackupCopy", "BackupFile",
                            "BackupFileCopy", "BackupToTape", "BackupVm", "CdpReplicationVM", "CopyFile", "CopyVm", "FileToTape", "GoogleBackupJob",
                            "ObjectStorageBackup", "ObjectStorageBackupCopy", "OracleLogBackup", "PostgreSqlLogBackup", "ReplicationVM",
                            "SimpleBackupCopy", "SobrMaintenance", "SqlLogBackup", "SureBackup", "Unknown"],
    "BackupServerJobBottleneck": ["Network", "None", "Proxy", "Source", "SourceWanAccelerator", "Target", "TargetWanAccelerator", "Unknown"],
    "BackupServerJobScheduleType": ["BackupWindow", "Chained", "Continuously", "Daily", "Monthly", "NotScheduled", "Periodically", "Unknown"],
    "BackupServerJobTargetType": ["Cloud", "Local", "None", "Unknown"],
    "BackupServerJobRetentionLimitType": ["Days", "None", "RestorePoints", "Unknown"],
    "BackupServerJobSessionTaskStatus": ["Failed", "Pending", "Running", "Success", "Unknown", "Warning"],
    "BackupServerJobScheduleOptionsDailyKind": ["Everyday", "SelectedDays", "Unknown", "WeekDays"],
    "BackupServerJobScheduleOptionsMonthlyDayNumberInMonth": ["First", "Fourth", "Last", "OnDay", "Second", "Third", "Unknown"],
    "BackupServerJobScheduleOptionsPeriodicallyKind": ["Days", "Hours", "Minutes", "Seconds", "Unknown"],
    "DaysOfWeek": ["Friday", "Monday", "Saturday", "Sunday", "Thursday", "Tuesday", "Wednesday"],  # also the *_day, *_day_of_week enums
    "Month": ["April", "August", "December", "February", "January", "July", "June", "March", "May", "November", "October", "September"],
    "ActiveAlarmArea": ["vone", "vspc"],
    "AlarmObjectType": ["BackupAgent", "BackupMicrosoft365Server", "BackupProxy", "BackupRepository", "BackupServer", "BackupServerJob",
                        "BackupWanAccelerator", "CloudGateway", "CloudRepository", "Company", "DiscoveryRule", "EnterpriseManagerServer",
                        "FailoverPlan", "Integrator", "Internal", "Location", "ManagementAgent", "ObjectEntity", "Reseller",
                        "ResellerCloudRepository", "Site", "Unknown", "User", "VbAppliance", "VOneServer"],
    "AlarmActivationStatus": ["Acknowledged", "Error", "Info", "Resolved", "Unknown", "Warning"],
    "LicenseUsageOrganizationType": ["Company", "Provider", "Reseller", "Unknown"],
    "ServerCurrentLicenseUsageServerType": ["BackupAndReplication", "CloudConnect", "Unknown", "VB365", "VONE", "VSPC"],
    "CurrentLicenseUsageWorkloadUnitType": ["Instances", "Points", "Unknown"],
    "Vb365ServerServerApiVersion": ["Unknown", "V6", "V7", "V8"],
    "Vb365ServerStatus": ["Healthy", "Inaccessible", "Unknown", "Warning"],
    "ManagementAgentStatus": ["Applying", "Error", "FailedToUpdate", "Healthy", "Inaccessible", "Installation", "Restarting", "Unknown",
                              "Updating", "Warning"],
    "Vb365OrganizationBaseType": ["Hybrid", "Microsoft365", "OnPremises", "Unknown"],
    "Vb365OrganizationRegion": ["China", "Default", "Germany", "Unknown", "USDefence", "USGovernment"],  # also *_base_region
    "Vb365OrganizationBaseCloudAuthenticatedMethod": ["Basic", "Modern", "ModernWithLegacyProtocols", "Unknown"],
    "Vb365OrganizationBaseProtectedServicesItem": ["ExchangeOnline", "MicrosoftExchangeServer", "MicrosoftSharePointServer", "MicrosoftTeams",
                                                   "MicrosoftTeamsChats", "SharePointOnlineAndOneDriveForBusiness", "Unknown"],
    "ActivityLogKind": ["External", "Internal"],
    # activity_log_type.py, verbatim (its "VCDOrganizationUnmapped," carries the package's trailing comma)
    "ActivityLogType": ["AgentPackagesDownloaded", "AgentStoredCredentialsChanged", "BackupJobAssigned", "BackupJobCreated",
                        "BackupJobDeleted", "BackupJobDisabled", "BackupJobEnabled", "BackupJobModified", "BackupJobRetried",
                        "BackupJobRevoked", "BackupJobStarted", "BackupJobStopped", "BackupPolicyCreated", "BackupPolicyModified",
                        "BackupPolicyRemoved", "BackupRepositoryAdded", "BackupServerEncryptionPasswordAdded",
                        "BackupServerEncryptionPasswordDeleted", "BackupServerEncryptionPasswordModified", "BackupServerResourceAdded",
                        "BackupServerResourceRemoved", "BackupUserCredentialsAdded", "BackupUserCredentialsModified",
                        "BackupUserCredentialsRemoved", "ClientUserMFAPolicyModified", "CompanyAuthenticationTokenReset", "CompanyCreated",
                        "CompanyDeleted", "CompanyLocationCreated", "CompanyLocationModified", "CompanyLocationRemoved",
                        "CompanyMFAPolicyEnforcementUpdated", "CompanyMFAPolicyModified", "CompanyModified",
                        "CompanyRESTAPIAccessModified", "CompanyRestored", "CompanyStatusUpdated", "CompanyUserCreated",
                        "CompanyUserLocationCreated", "CompanyUserLocationRemoved", "CompanyUserModified", "CompanyUserRemoved",
                        "CompanyUserRoleModified", "CompanyUserStatusUpdated", "DeploymentTaskRecordReset", "DiscoveryRuleCreated",
                        "DiscoveryRuleModified", "DiscoveryRuleRemoved", "LicenseAssigned", "LicenseInstalled", "LicenseModified",
                        "LicenseRevoked", "LicenseUpdated", "LicenseUsageReportFinalized", "LoginFailed", "LoginSuccessful",
                        "ManagementAgentAccepted", "ManagementAgentAssigned", "ManagementAgentCertificateChanged",
                        "ManagementAgentConnected", "ManagementAgentDeleted", "ManagementAgentDisconnected", "ManagementAgentRegistered",
                        "ManagementAgentRejected", "PortalBrandingModified", "ProductUsageStatisticsSent", "ProviderUserMFAPolicyModified",
                        "ProxySessionClosed", "ProxySessionOpened", "PublicCloudAccountChanged", "PublicCloudAccountCreated",
                        "PublicCloudAccountDeleted", "PublicCloudApplianceDeleted", "PublicCloudApplianceDeploymentStarted",
                        "PublicCloudApplianceMapped", "PublicCloudApplianceRegistrationStarted", "PublicCloudApplianceUnmapped",
                        "ResellerCreated", "ResellerDeleted", "ResellerModified", "ResellerRESTAPIAccessModified", "ResellerStatusUpdated",
                        "RestorePerformed", "SSOCompanyMatchingFailed", "SsoIdentityProviderAdded", "SsoIdentityProviderRemoved",
                        "SsoIdentityProviderRuleAdded", "SsoIdentityProviderRuleRemoved", "SsoIdentityProviderRuleStatusUpdated",
                        "SsoIdentityProviderRuleUpdated", "SsoIdentityProviderStatusUpdated", "SsoIdentityProviderUpdated",
                        "SSOIdentityProviderValidationFailed", "SSOLoginFailed", "SsoLoginSuccesful", "SSOUserRoleUpdate",
                        "SupportCaseAttachmentUploaded", "SupportCaseCreated", "TenantAssigned", "TenantCreated", "TenantDisabled",
                        "TenantEnabled", "TenantModified", "TenantRemoved", "TenantUnassigned", "Unknown", "UserImpersonationSuccessful",
                        "UserLoginTypeCreated", "UserLoginTypeRemoved", "UserRecordCreated", "UserRecordDisabled", "UserRecordEnabled",
                        "UserRecordModified", "UserRecordRecreated", "UserRecordRemoved", "UserTokenRevoked", "VB365CopyJobCreated",
                        "VB365JobCreated", "VB365JobDeleted", "VB365JobDisabled", "VB365JobEnabled", "VB365JobModified", "VB365JobStarted",
                        "VB365JobStopped", "VB365OrganizationCreated", "VB365OrganizationDeleted", "VB365OrganizationMapped",
                        "VB365OrganizationModified", "VB365OrganizationUnmapped", "VbrIsoPredownloadCancelled", "VbrIsoPredownloadStarted",
                        "VbrUidRegenerated", "VCDOrganizationMapped", "VCDOrganizationUnmapped,", "VCSPPulseTenantCreated",
                        "VCSPPulseTenantMapped", "VCSPPulseTenantUnmapped", "VOneUidRegenerated", "vSphereTagAssigned",
                        "vSphereTagRevoked"],
}


def spc_type(text):
    """One member type of SPC_MODELS as JSON Schema."""
    nullable = text.endswith("?")
    core = text.rstrip("?")
    if core.startswith("["):
        out = {"type": "array", "items": spc_type(core[1:-1])}
    elif core in ("uuid", "date-time"):
        out = {"type": "string", "format": core}
    elif core in ("string", "integer", "number", "boolean", "object"):
        out = {"type": core}
    elif core in SPC_ENUMS:
        out = {"enum": list(SPC_ENUMS[core])}
    elif core in SPC_MODELS:
        out = {"$ref": f"#/$defs/{core}"}
    else:
        raise ValueError(f"unknown type {text!r} in SPC_MODELS")
    if not nullable:
        return out
    if "enum" in out:
        return {"enum": out["enum"] + [None]}
    if "$ref" in out:
        return {"anyOf": [out, {"type": "null"}]}
    return dict(out, type=[out["type"], "null"])


SPC_DEFS = {name: {"type": "object", "required": [m[:-1] for m in members if m.endswith("!")],
                   "properties": {m.rstrip("!"): spc_type(t) for m, t in members.items()}}
            for name, members in SPC_MODELS.items()}


def spc_response(model, many=False):
    """(label, JSON Schema) of an answer: `model` in the envelope (the Get…Response200 models:
    `data` required, `meta` and `errors` may be null or absent), "ErrorResponse" bare. A list
    must also carry meta.pagingInfo, as the reconstruction's list operations require."""
    if model == "ErrorResponse":
        return "ErrorResponse (model)", {"$defs": SPC_DEFS, "$ref": "#/$defs/ErrorResponse"}
    data = {"type": "array", "items": {"$ref": f"#/$defs/{model}"}} if many else {"$ref": f"#/$defs/{model}"}
    meta = {"type": "object", "required": ["pagingInfo"], "properties": {"pagingInfo": {"$ref": "#/$defs/PagingInformation"}}} if many \
        else {"anyOf": [{"$ref": "#/$defs/ResponseMetadata"}, {"type": "null"}]}
    schema = {"$defs": SPC_DEFS, "type": "object", "required": ["data", "meta"] if many else ["data"],
              "properties": {"data": data, "meta": meta, "errors": {"type": ["array", "null"], "items": {"$ref": "#/$defs/ResponseError"}}}}
    return ("{data: %s[], meta.pagingInfo} (model)" if many else "{data: %s} (model)") % model, schema


PASS_THROUGH_VSPC = [  # (path, model of its `data` items)
    ("/organizations/companies", "Company"),
    ("/infrastructure/backupServers/jobs", "BackupServerJob"),
    ("/alarms/active", "ActiveAlarm"),
    ("/licensing/usage/organizations", "OrganizationCurrentLicenseUsage"),
    ("/infrastructure/vb365Servers", "Vb365Server"),
    ("/infrastructure/vb365Servers/organizations", "Vb365OrganizationBase"),
    ("/infrastructure/vb365Servers/organizations/companyMappings", "Vb365OrganizationToCompanyMapping"),
    ("/eventLogs/activityLogs", "ActivityLog"),  # holds what the admin API changed: one tenant, created by run_vspc
]

SEED = {  # the envelope only, for the seed dialect
    "token": {"type": "object", "required": ["access_token"]},
    "single": {"type": "object", "required": ["data"]},
    "list": {"type": "object", "required": ["data", "meta"], "properties": {"data": {"type": "array"}, "meta": {
        "type": "object", "required": ["pagingInfo"], "properties": {"pagingInfo": {
            "type": "object", "required": ["total", "count", "offset"], "properties": {k: {"type": "integer"} for k in ("total", "count", "offset")}}}}}},
    "oauth_error": {"type": "object", "required": ["error"]},  # not enveloped, as in every version
    "error": {"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "minItems": 1, "items": {"type": "object"}}}},
}


def run_vspc(target, dialect, specs):
    document = json.loads((specs / "vspc_v3_relevant_extract.RECONSTRUCTED.json").read_text())
    _, shape = vspc_schemas(document)
    users = {u["username"]: u for u in json.loads((REPO / "config/simulator/vspc.json").read_text())["users"]}
    base = document["basePath"]
    strict = dialect == "3.6.1"

    def check(operation, kind, endpoint, status, body):
        if strict:
            responses = document["paths"][operation]["responses"]
            text = responses.get(str(status)) or responses.get("default") or document["default_error_response"]["schema"]
            schema, label = shape(text), re.sub(r"\s*\(.*\)\s*$", "", text)
            label = f"ResponseEnvelope & {label}" if label.startswith("{") else label
        else:
            schema, label = SEED[kind], f"envelope: {kind} (seed)"
        note = "passes only because ErrorResponse requires nothing: no `errors`" if label == "ErrorResponse" and isinstance(body, dict) and "errors" not in body else ""
        return target.judge(endpoint, status, label, Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER), body, note)

    def call(method, operation, path, kind, expect=(200,), model=None, **kwargs):
        """`model` (3.6.1): the SPC_MODELS answer to check instead of the reconstruction's."""
        endpoint, status, body = target.fetch(method, base + path, expect=expect, **kwargs)
        if body is not None and model and strict:
            label, schema = spc_response(model, many=kind == "list")
            note = "passes only because ErrorResponse requires nothing: no `errors`" if model == "ErrorResponse" and isinstance(body, dict) and "errors" not in body else ""
            target.judge(endpoint, status, label, Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER), body, note)
        elif body is not None:
            check(operation, kind, endpoint, status, body)
        return body

    def paging(operation, path, full, model=None):
        """Walks `path` PAGE items at a time: each page's pagingInfo {total, count, offset}, and
        the pages together hold the full list's items, in order."""
        everything = (full or {}).get("data") if isinstance(full, dict) else None
        everything = everything if isinstance(everything, list) else []
        identity = lambda item: json.dumps(item, sort_keys=True)
        seen, offset, problems = [], 0, []
        for _ in range(1000):
            page = call("GET", operation, f"{path}?limit={PAGE}&offset={offset}", "list", model=model, label="gateway-svc", bearer=token)
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                problems.append(f"offset {offset}: no page")
                break
            info = (page.get("meta") or {}).get("pagingInfo") or {}
            data = page["data"]
            expected = {"total": len(everything), "count": len(data), "offset": offset}
            if {k: info.get(k) for k in expected} != expected or len(data) > PAGE:
                problems.append(f"offset {offset}: pagingInfo {info} with {len(data)} items (want {expected}, at most {PAGE})")
            seen += data
            offset += PAGE
            if not data or offset >= (info.get("total") if isinstance(info.get("total"), int) else len(everything)):
                break
        if list(map(identity, seen)) != list(map(identity, everything)):
            problems.append(f"the pages hold {len(seen)} items, not the full list's {len(everything)} in order")
        target.add(f"GET {base}{path}?limit={PAGE}&offset=0,{PAGE},…", "-", "(paging: pagingInfo, union = list)", not problems, "; ".join(problems))
        return everything

    def login(username, password=None):
        form = {"grant_type": "password", "username": username, "password": password or users[username]["password"]}
        body = call("POST", "POST /token", "/token", "oauth_error" if password else "token", expect=(400,) if password else (200,),
                    label="wrong password" if password else username, form=form)
        return body.get("access_token") if isinstance(body, dict) else None

    token = login("gateway-svc")
    login("gateway-svc", password="wrong-password")
    call("GET", "GET /users/me", "/users/me", "single", label="gateway-svc", bearer=token)
    call("GET", "GET /about", "/about", "single", label="gateway-svc", bearer=token)

    list_op, one_op, tenants = "GET /infrastructure/sites/tenants", "GET /infrastructure/sites/tenants/{tenantUid}", "/infrastructure/sites/tenants"
    full = call("GET", list_op, tenants, "list", label="gateway-svc", bearer=token)
    everything = [t.get("instanceUid") for t in paging(list_op, tenants, full) if isinstance(t, dict)]
    for uid in everything:
        body = call("GET", one_op, f"{tenants}/{uid}", "single", label="gateway-svc", bearer=token)
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and body["data"].get("instanceUid") != uid:
            target.add(f"GET {base}{tenants}/{uid}", 200, "(the tenant asked for)", False, f"data.instanceUid is {body['data'].get('instanceUid')}")
    unknown = str(uuid.uuid4())
    call("GET", one_op, f"{tenants}/{unknown}", "error", expect=(404,), label="unknown uid", bearer=token)
    call("GET", list_op, tenants, "error", expect=(401,), label="no bearer")
    owner = login("company-owner")
    call("GET", list_op, tenants, "error", expect=(403,), label="company-owner", bearer=owner)

    # The activity log records changes of the estate: make one through the simulator's admin API
    # (loopback, not a Veeam route), so that the log has a record to check.
    endpoint, status, created = target.fetch("POST", "/_sim/vspc/tenants", expect=(201,), label="admin API: a tenant for the activity log",
                                             json_body={"name": "Validator Tenant"})
    if created is not None:
        target.add(endpoint, status, "(admin API: {instanceUid})", isinstance(created, dict) and bool(created.get("instanceUid")))

    # The pass-through collections: not in the reconstruction; 3.6.1 against SPC_MODELS.
    for path, model in PASS_THROUGH_VSPC:
        operation = f"GET {path}"
        listing = paging(operation, path, call("GET", operation, path, "list", model=model, label="gateway-svc", bearer=token), model=model)
        if path == "/organizations/companies":
            companies = [c.get("instanceUid") for c in listing if isinstance(c, dict)]
            for uid in companies:
                body = call("GET", f"{operation}/{{companyUid}}", f"{path}/{uid}", "single", model=model, label="gateway-svc", bearer=token)
                if isinstance(body, dict) and isinstance(body.get("data"), dict) and body["data"].get("instanceUid") != uid:
                    target.add(f"GET {base}{path}/{uid}", 200, "(the company asked for)", False, f"data.instanceUid is {body['data'].get('instanceUid')}")
            call("GET", f"{operation}/{{companyUid}}", f"{path}/{uuid.uuid4()}", "error", expect=(404,), model="ErrorResponse", label="unknown uid", bearer=token)
            call("GET", f"{operation}/{{companyUid}}", f"{path}/not-a-uuid", "error", expect=(400,), model="ErrorResponse", label="not a UUID", bearer=token)
            call("GET", operation, path, "error", expect=(403,), model="ErrorResponse", label="company-owner", bearer=owner)
    call("GET", "GET /{unknown}", "/no/such/collection", "error", expect=(404,), model="ErrorResponse", label="unknown path", bearer=token)


# ---------------------------------------------------------------------------------------------


def print_summary(targets):
    failed = 0
    for target in targets:
        bad = sum(not c.ok for c in target.checks)
        failed += bad
        print(f"\n== {target.name}: {len(target.checks)} checks, {bad} failed" + (f"  ({NOTES[target.name]})" if target.name in NOTES else ""))
        width = max([len("endpoint")] + [len(c.endpoint) for c in target.checks])
        schema_width = max([len("schema")] + [len(c.schema) for c in target.checks])
        print(f"  {'endpoint':<{width}}  {'status':<6}  {'schema':<{schema_width}}  result")
        for c in target.checks:
            result = ("OK" if c.ok else "FAIL") + (f"  {c.message}" if c.message else "")
            print(f"  {c.endpoint:<{width}}  {str(c.status):<6}  {c.schema:<{schema_width}}  {result}")
    total = sum(len(t.checks) for t in targets)
    print(f"\n{total} checks, {failed} failed" + ("" if failed else ": the simulator matches the schemas checked"))
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("binary", nargs="?", default=os.environ.get("SIM_BIN"), help="veeam-sim binary (default: $SIM_BIN)")
    parser.add_argument("--only", action="append", default=[], metavar="PRODUCT[:VERSION]", help="e.g. vb365:v8, vspc:3.6.1, vspc (repeatable)")
    vendored = REPO / "specs/upstream"
    parser.add_argument("--specs", type=Path, default=vendored if vendored.is_dir() else REPO.parent / "shared/upstream-specs",
                        help="folder of the upstream specs (default: the repository's verbatim copies in specs/upstream)")
    args = parser.parse_args()
    if not args.binary:
        parser.error("pass the veeam-sim binary or set SIM_BIN")
    binary = str(Path(args.binary).resolve())
    if not os.access(binary, os.X_OK):
        parser.error(f"{binary} is not an executable file")
    for checker in (oas30_format_checker, Draft202012Validator.FORMAT_CHECKER):
        if not {"date-time", "uuid"} <= set(checker.checkers):
            parser.error("date-time is not checked: pip install rfc3339-validator")
    known = {f"{p}:{v}" for p, v in TARGETS} | {p for p, _ in TARGETS}
    if unknown := [o for o in args.only if o not in known]:
        parser.error(f"--only {unknown[0]}: one of {', '.join(sorted(known))}")
    selected = [(p, v) for p, v in TARGETS if not args.only or p in args.only or f"{p}:{v}" in args.only]

    targets = []
    for product, version in selected:
        target = Target(f"{product}:{version}")
        targets.append(target)
        vb365_api, dialect = (version, "seed") if product == "vb365" else ("v5", version)
        print(f"-- {target.name}: veeam-sim --vb365-api {vb365_api} --dialect {dialect}", file=sys.stderr)
        try:
            with simulator(binary, vb365_api, dialect) as (ports, context):
                target.port, target.ctx = ports[product], context
                (run_vb365 if product == "vb365" else run_vspc)(target, version, args.specs)
        except SimulatorError as error:
            target.add("(simulator start)", "-", "-", False, str(error))
        except Exception as error:  # a body too far from the schema to walk: still a failure, reported
            target.add("(validator aborted)", "-", "-", False, f"{type(error).__name__}: {error}")
    return 1 if print_summary(targets) else 0


if __name__ == "__main__":
    sys.exit(main())
