#!/usr/bin/env python3
"""Uses the Python client that openapi-python-client generates from docs/openapi.yaml against a
running demo gateway (`veeam-gateway demo`, config/demo.yaml, fixtures config/simulator), through
the generated API only: the generated AuthenticatedClient, each operation's sync_detailed, and
the generated models. Every answer is checked; any difference from what the gateway and the
document promise is an AssertionError (or the generated client's UnexpectedStatus for a status
the document does not list), and the script exits non-zero.

    python3 scripts/generated-client.py --url http://127.0.0.1:PORT --package-dir DIR

DIR holds the generated package `veeam_gateway_client` (scripts/generated-client.sh makes it).

Checked: the tenant list page by page (the paging metadata leads to the next page, pages do not
overlap, together they are the whole list); one tenant's typed fields; If-None-Match answered
304 on the tenant and on the list (and 200 for another ETag); a 403 (a company owner reading a
cloud tenant, a service-provider administrator purging) and a 404 (an unknown, well-formed
tenant id) parsed as the generated Problem; a purge of one tenant's entry; /v1/status. Each
parsed body is also checked to carry no member the document leaves out (the models'
additional_properties are empty where the schema does not allow extra members).
"""

import argparse
import sys

# The demo's fixtures (config/simulator) and callers (config/demo.yaml).
ABC_ORGANIZATION = "vb365-demo.cbc52c37-df7f-4b03-98f3-036e7d4b3127"  # demo-abc-app's scope
ALPHA_CLOUD_TENANT = "vspc-demo.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"
UNKNOWN_TENANT = "vspc-demo.00000000-0000-4000-8000-000000000000"  # well-formed, in no fixture
ADMIN, SP_ADMIN, COMPANY_OWNER = "demo-portal-admin", "demo-sp-admin", "demo-company-owner"
UPSTREAMS = {"vb365-demo": "vb365", "vspc-demo": "vspc"}
PAGE = 2  # small, so the demo's six tenants take several pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the gateway's base URL")
    parser.add_argument("--package-dir", required=True, help="the directory holding the generated veeam_gateway_client")
    args = parser.parse_args()
    sys.path.insert(0, args.package_dir)

    import attrs
    import httpx
    from veeam_gateway_client import AuthenticatedClient, Client
    from veeam_gateway_client.api.default import get_status, get_tenant, healthz, list_tenants, purge_cache
    from veeam_gateway_client.models import (
        GetTenantResponse200,
        HealthzResponse200,
        Problem,
        PurgeCacheResponse200,
        SourceStatusProduct,
        SourceStatusStatus,
        Status,
        StatusCustomerDriftItemByKind,
        StatusMark,
        StatusUpstreamsItemMark,
        Tenant,
        TenantDetails,
        TenantKind,
        TenantList,
        TenantSourceProduct,
    )
    from veeam_gateway_client.types import UNSET

    # Schemas that allow members of any name (additionalProperties): the only models whose
    # additional_properties may hold anything.
    open_models = (TenantDetails, StatusCustomerDriftItemByKind)

    def described(value, where: str) -> None:
        """Every member of a parsed body is one the document names."""
        if isinstance(value, list):
            for index, item in enumerate(value):
                described(item, f"{where}[{index}]")
        elif attrs.has(type(value)):
            if not isinstance(value, open_models):
                extra = getattr(value, "additional_properties", {})
                assert not extra, f"{where}: members the document does not describe: {sorted(extra)}"
            for field in attrs.fields(type(value)):
                if field.name != "additional_properties":
                    described(getattr(value, field.name), f"{where}.{field.name}")

    def client(key: str) -> AuthenticatedClient:
        # The document's `bearer` scheme: an API key in Authorization: Bearer.
        return AuthenticatedClient(
            base_url=args.url, token=key, raise_on_unexpected_status=True, timeout=httpx.Timeout(15.0)
        )

    def problem(response, status: int, code: str, instance: str) -> Problem:
        """A problem answer: the generated Problem with the status, code and request id expected."""
        assert response.status_code == status, f"{instance}: {response.status_code} instead of {status}: {response.content!r}"
        assert response.headers["content-type"] == "application/problem+json", response.headers["content-type"]
        parsed = response.parsed
        assert isinstance(parsed, Problem), f"{instance}: {type(parsed).__name__} instead of Problem"
        described(parsed, "problem")
        assert parsed.status == status, parsed.status
        assert parsed.code == code, f"{instance}: code {parsed.code} instead of {code}"
        assert parsed.type_ == f"urn:veeam-gateway:problem:{code}", parsed.type_
        assert parsed.title, "a problem without a title"
        assert parsed.detail, "a problem without a detail"
        assert parsed.instance == instance, f"instance {parsed.instance} instead of {instance}"
        assert parsed.request_id == response.headers["x-request-id"], (parsed.request_id, response.headers["x-request-id"])
        return parsed

    admin, sp_admin, owner = client(ADMIN), client(SP_ADMIN), client(COMPANY_OWNER)

    # The process serves (no credentials needed; the generated Client is the anonymous one).
    health = healthz.sync_detailed(client=Client(base_url=args.url, raise_on_unexpected_status=True, timeout=httpx.Timeout(15.0)))
    assert health.status_code == 200 and isinstance(health.parsed, HealthzResponse200), health
    assert health.parsed.status == "ok", health.parsed.status

    # --- The tenant list, a page at a time.
    whole = list_tenants.sync_detailed(client=admin, limit=500)
    assert whole.status_code == 200, whole.status_code
    assert isinstance(whole.parsed, TenantList), type(whole.parsed).__name__
    described(whole.parsed, "list")
    total = whole.parsed.meta.total
    assert total == len(whole.parsed.data) and total > PAGE, f"the demo has {total} tenants; more than {PAGE} are needed"
    sources = {source.upstream: source for source in whole.parsed.meta.sources}
    assert set(sources) == set(UPSTREAMS), sorted(sources)
    for name, source in sources.items():
        assert source.product == SourceStatusProduct(UPSTREAMS[name]), (name, source.product)
        # stale: served from the cache while a refresh runs (no problem), as a long-running demo may.
        assert source.status in (SourceStatusStatus.OK, SourceStatusStatus.STALE), (name, source.status, source.problem)
        assert source.problem is None, (name, source.problem)
    assert sum(source.count for source in sources.values()) == total, [s.count for s in sources.values()]

    pages: list[list[Tenant]] = []
    offset = 0
    while True:
        page = list_tenants.sync_detailed(client=admin, limit=PAGE, offset=offset)
        assert page.status_code == 200, page.status_code
        assert isinstance(page.parsed, TenantList), type(page.parsed).__name__
        described(page.parsed, f"list page at {offset}")
        meta = page.parsed.meta
        assert (meta.limit, meta.offset, meta.total) == (PAGE, offset, total), (meta.limit, meta.offset, meta.total)
        assert len(page.parsed.data) == min(PAGE, total - offset), (offset, len(page.parsed.data))
        if not page.parsed.data:
            break
        pages.append(page.parsed.data)
        offset = meta.offset + meta.limit  # the next page, from the paging metadata
    assert len(pages) >= 2, f"{len(pages)} page(s)"
    assert offset >= total, (offset, total)
    paged = [tenant.id for tenant_page in pages for tenant in tenant_page]
    assert len(paged) == len(set(paged)), f"pages overlap: {paged}"
    assert paged == [tenant.id for tenant in whole.parsed.data], "the pages are not the whole list in its order"

    # --- One tenant, then If-None-Match.
    read = get_tenant.sync_detailed(ABC_ORGANIZATION, client=admin)
    assert read.status_code == 200, read.status_code
    assert isinstance(read.parsed, GetTenantResponse200), type(read.parsed).__name__
    described(read.parsed, "tenant")
    tenant = read.parsed.data
    assert isinstance(tenant, Tenant), type(tenant).__name__
    assert tenant.id == ABC_ORGANIZATION, tenant.id
    assert tenant.name == "abc.onmicrosoft.com", tenant.name
    assert tenant.kind == TenantKind.ORGANIZATION, tenant.kind
    assert tenant.source.product == TenantSourceProduct.VB365, tenant.source.product
    assert tenant.source.upstream == "vb365-demo", tenant.source.upstream
    assert tenant.source.id == ABC_ORGANIZATION.split(".", 1)[1], tenant.source.id
    assert tenant.type_ == "Office365", tenant.type_
    assert tenant.links.self_ == f"/v1/tenants/{ABC_ORGANIZATION}", tenant.links.self_
    assert tenant.backup.protected is True, tenant.backup.protected
    listed = next(t for t in whole.parsed.data if t.id == ABC_ORGANIZATION)
    assert listed.to_dict() == tenant.to_dict(), "the tenant read alone differs from the listed one"
    etag = read.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), etag

    unchanged = get_tenant.sync_detailed(ABC_ORGANIZATION, client=admin, if_none_match=etag)
    assert unchanged.status_code == 304, unchanged.status_code
    assert unchanged.parsed is None and unchanged.content == b"", unchanged.content
    assert unchanged.headers["etag"] == etag, unchanged.headers["etag"]
    other = get_tenant.sync_detailed(ABC_ORGANIZATION, client=admin, if_none_match='"not-this-one"')
    assert other.status_code == 200 and isinstance(other.parsed, GetTenantResponse200), other.status_code
    list_etag = whole.headers["etag"]
    list_unchanged = list_tenants.sync_detailed(client=admin, limit=500, if_none_match=list_etag)
    assert list_unchanged.status_code == 304, list_unchanged.status_code
    assert list_unchanged.parsed is None and list_unchanged.headers["etag"] == list_etag

    # --- 403 and 404 as the generated Problem.
    forbidden = get_tenant.sync_detailed(ALPHA_CLOUD_TENANT, client=owner, x_request_id="generated-client-403")
    denied = problem(forbidden, 403, "auth.forbidden", f"/v1/tenants/{ALPHA_CLOUD_TENANT}")
    assert denied.request_id == "generated-client-403", denied.request_id
    assert "PortalAdministrator" in denied.detail, denied.detail
    purge_denied = problem(purge_cache.sync_detailed(client=sp_admin), 403, "auth.forbidden", "/v1/cache")
    missing = problem(get_tenant.sync_detailed(UNKNOWN_TENANT, client=admin), 404, "tenant.not_found", f"/v1/tenants/{UNKNOWN_TENANT}")
    assert UNKNOWN_TENANT in missing.detail, missing.detail

    # --- Purge the tenant's cached answer: the next read comes from the upstream again.
    get_tenant.sync_detailed(ABC_ORGANIZATION, client=admin)  # cached (again) before the purge
    purged = purge_cache.sync_detailed(client=admin, tenant=ABC_ORGANIZATION)
    assert purged.status_code == 200, purged.status_code
    assert isinstance(purged.parsed, PurgeCacheResponse200), type(purged.parsed).__name__
    described(purged.parsed, "purge")
    assert purged.parsed.purged >= 1, purged.parsed.purged
    assert purged.parsed.replicas is UNSET, purged.parsed.replicas  # the demo has no shared tier
    after = get_tenant.sync_detailed(ABC_ORGANIZATION, client=admin)
    assert after.status_code == 200 and after.headers["x-cache"] == "MISS", (after.status_code, after.headers.get("x-cache"))
    assert after.headers["etag"] == etag, "the same tenant read again has another ETag"

    # --- /v1/status, and the problems above in it.
    status = get_status.sync_detailed(client=admin)
    assert status.status_code == 200, status.status_code
    report = status.parsed
    assert isinstance(report, Status), type(report).__name__
    described(report, "status")
    assert report.mark == StatusMark.OK, report.mark
    assert {(u.name, u.product.value) for u in report.upstreams} == set(UPSTREAMS.items()), [u.name for u in report.upstreams]
    for upstream in report.upstreams:
        assert upstream.mark == StatusUpstreamsItemMark.OK and upstream.reachable, (upstream.name, upstream.mark, upstream.reason)
        assert upstream.accounts, f"{upstream.name}: no account"
    routes = {route.route for route in report.gateway.routes}
    assert {"GET /v1/tenants", "GET /v1/tenants/{id}", "DELETE /v1/cache"} <= routes, sorted(routes)
    assert report.gateway.uptime_seconds >= 0 and report.cache.max_bytes > 0
    seen = {(p.route, p.status, p.code, p.caller) for p in report.problems}
    for expected in [
        ("GET /v1/tenants/{id}", 403, "auth.forbidden", COMPANY_OWNER),
        ("DELETE /v1/cache", 403, "auth.forbidden", SP_ADMIN),
        ("GET /v1/tenants/{id}", 404, "tenant.not_found", ADMIN),
    ]:
        assert expected in seen, f"/v1/status lists no {expected}: {sorted(seen)}"
    assert any(p.request_id == "generated-client-403" for p in report.problems), "the 403's request id is not in /v1/status"
    status_denied = problem(get_status.sync_detailed(client=sp_admin), 403, "auth.forbidden", "/v1/status")

    print(f"list: {total} tenants in {len(pages)} pages of {PAGE}, no overlap, in the list's order")
    print(f"tenant: {tenant.id} {tenant.name!r} ({tenant.source.product.value}, {tenant.kind.value}), ETag {etag}")
    print(f"If-None-Match: tenant {unchanged.status_code}, list {list_unchanged.status_code}, another ETag {other.status_code}")
    print(f"problems: {denied.status} {denied.code}, {purge_denied.status} {purge_denied.code} (purge), "
          f"{status_denied.status} {status_denied.code} (/v1/status), {missing.status} {missing.code}")
    print(f"purge: {purged.parsed.purged} entr{'y' if purged.parsed.purged == 1 else 'ies'}, then X-Cache {after.headers['x-cache']}")
    print(f"status: {report.mark.value}, upstreams {', '.join(f'{u.name} {u.mark.value}' for u in report.upstreams)}, "
          f"{len(report.problems)} problem kinds, {len(report.gateway.routes)} routes")
    print("generated client: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
