#!/usr/bin/env python3
"""The status page in a real browser (issue 16): Debian's Chromium, driven by Playwright.

Starts, as separate processes: a simulated VB365 (REST v8) and a simulated VSPC (3.6.1) on
ports of their own with one certificate, and the gateway in front of both. Then, in headless
Chromium:
  1. loads /status, types a PortalAdministrator's key into the form, and sees both upstreams ok;
  2. stops the VSPC simulator and sees its row turn down, with the error, within one refresh
     (3 s) plus the probe interval (1 s);
  3. starts it again on the same port and sees the row recover;
  4. checks that the page logged no console error and threw nothing, that the key appears in no
     request URL, in no storage and in no cookie the page can read, that the session cookie is
     HttpOnly, and that the page fits a phone's width;
  5. saves a screenshot (docs/status-page.png unless --screenshot says otherwise).

Usage: python3 scripts/status-page-browser.py --bin DIR [--gateway PATH] [--screenshot PATH]
DIR holds veeam-sim (and veeam-gateway unless --gateway). Needs: pip install playwright; the
Chromium at $CHROMIUM or /usr/bin/chromium (no browser download: this runs offline).
"""
import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

REFRESH_S = 3
PROBE_S = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout}s")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="directory holding veeam-sim (and veeam-gateway)")
    parser.add_argument("--gateway", help="the gateway binary (default: BIN/veeam-gateway)")
    parser.add_argument("--screenshot", default="docs/status-page.png")
    args = parser.parse_args()
    sim_bin = os.path.join(args.bin, "veeam-sim")
    gateway_bin = args.gateway or os.path.join(args.bin, "veeam-gateway")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")

    work = tempfile.mkdtemp(prefix="status-page-")
    procs = []
    try:
        # One CA and one server certificate for both simulators, so the gateway trusts one file
        # and a restarted VSPC is the same server.
        ca_key, ca, key, csr, cert = (f"{work}/{n}" for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
        run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "2", "-subj", "/CN=status-page test CA")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
        with open(f"{work}/ext.cnf", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", f"{work}/ext.cnf")

        vb365_port, vspc_port, gw_port = free_port(), free_port(), free_port()
        common = ["--fixtures", "config/simulator", "--cert", cert, "--key", key, "--log-level", "warning"]

        def start_vb365():
            return subprocess.Popen([sim_bin, "--no-vspc", "--vb365-port", str(vb365_port), "--vb365-api", "v8", *common],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def start_vspc():
            return subprocess.Popen([sim_bin, "--no-vb365", "--vspc-port", str(vspc_port), "--dialect", "3.6.1", *common],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        vb365 = start_vb365()
        procs.append(vb365)
        vspc = start_vspc()
        procs.append(vspc)
        wait_port(vb365_port, vb365, "the VB365 simulator")
        wait_port(vspc_port, vspc, "the VSPC simulator")

        admin_key = "sp-" + secrets.token_urlsafe(32)
        key_hash = subprocess.run([gateway_bin, "hash-key"], input=admin_key, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        vb365_fixture = json.load(open("config/simulator/vb365.json", encoding="utf-8"))
        env = dict(os.environ)
        orgs = []
        for n, org in enumerate(vb365_fixture["organizations"]):
            env[f"STATUS_ORG_{n}"] = org["account"]["password"]
            orgs.append(f"      - {{ username: {json.dumps(org['account']['username'])}, password: {{ env: STATUS_ORG_{n} }} }}")
        env["STATUS_VSPC"] = "Gateway-Svc-Pass-1"
        config = "\n".join([
            f"listen: {{ host: 127.0.0.1, port: {gw_port} }}",
            "log: { level: notice }",
            f"health: {{ probeInterval: {PROBE_S}s }}",
            "callers:",
            f"  - {{ id: status-admin, keyHash: {json.dumps(key_hash)}, roles: [PortalAdministrator] }}",
            "upstreams:",
            "  - name: vb365-demo",
            "    product: vb365",
            f"    baseURL: https://127.0.0.1:{vb365_port}",
            f"    tls: {{ caFile: {json.dumps(ca)} }}",
            "    timeouts: { connect: 1s, total: 3s }",
            "    organizations:",
            *orgs,
            "  - name: vspc-demo",
            "    product: vspc",
            f"    baseURL: https://127.0.0.1:{vspc_port}",
            f"    tls: {{ caFile: {json.dumps(ca)} }}",
            "    timeouts: { connect: 1s, total: 3s }",
            "    account: { username: gateway-svc, password: { env: STATUS_VSPC } }",
        ]) + "\n"
        with open(f"{work}/gateway.yaml", "w") as f:
            f.write(config)
        gateway_log = open(f"{work}/gateway.log", "w")
        gateway = subprocess.Popen([gateway_bin, "serve", "--config", f"{work}/gateway.yaml"], env=env, stdout=gateway_log, stderr=subprocess.STDOUT)
        procs.append(gateway)
        wait_port(gw_port, gateway, "the gateway")
        base = f"http://127.0.0.1:{gw_port}"

        # Some traffic for the charts: both products, hits and misses, a refusal now and then.
        stop_traffic = threading.Event()
        customer_errors = []

        def traffic():
            paths = ["/v1/customers", "/v1/tenants", "/v1/tenants/vb365-demo.cbc52c37-df7f-4b03-98f3-036e7d4b3127",
                     "/v1/tenants/vspc-demo.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "/v1/tenants/vb365-demo.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11",
                     "/v1/tenants/vspc-demo.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"] * 6 + ["/v1/tenants/vspc-demo.not-a-uuid"]
            n = 0
            while not stop_traffic.is_set():
                request = urllib.request.Request(base + paths[n % len(paths)], headers={"X-API-Key": admin_key})
                try:
                    urllib.request.urlopen(request, timeout=5).read()
                except Exception as error:
                    if paths[n % len(paths)] == "/v1/customers":
                        customer_errors.append(str(error))
                n += 1
                stop_traffic.wait(0.1)

        traffic_thread = threading.Thread(target=traffic, daemon=True)
        traffic_thread.start()

        failures = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            console_errors, page_errors, urls = [], [], []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: urls.append(r.url))

            page.goto(base + "/status")
            page.wait_for_selector("#login:not([hidden])", timeout=10_000)
            page.fill("#key", admin_key)
            page.click("#login-form button[type=submit]")
            ok = lambda name: f'tr[data-upstream="{name}"][data-mark="ok"]'
            page.wait_for_selector(ok("vb365-demo"), timeout=15_000)
            page.wait_for_selector(ok("vspc-demo"), timeout=15_000)
            print("both upstreams ok")
            # The customers' drift as last joined (the traffic reads /v1/customers).
            try:
                page.wait_for_function("document.getElementById('customer-drift').textContent.includes('vspc-demo')", timeout=10_000)
                print("customer drift:", page.inner_text("#customer-drift"))
            except Exception:
                failures.append(f"the page shows no customer drift: {page.inner_text('#customer-drift')!r}; /v1/customers failed: {customer_errors[:3]}")
            if page.input_value("#key") != "":
                failures.append("the key stayed in the form")

            stop(vspc)
            stopped = time.time()
            down = page.wait_for_selector('tr[data-upstream="vspc-demo"][data-mark="down"]', timeout=(REFRESH_S + PROBE_S + 4) * 1000)
            took = time.time() - stopped
            if took > REFRESH_S + PROBE_S + 1:
                failures.append(f"the down row took {took:.1f}s: more than one refresh ({REFRESH_S}s) and one probe interval ({PROBE_S}s)")
            error_text = down.query_selector(".error-cell").inner_text()
            print(f"vspc-demo down after {took:.1f}s: {error_text}")
            if "vspc-demo" not in error_text and "upstream." not in error_text:
                failures.append(f"the down row shows no error: {error_text!r}")
            if page.get_attribute('tr[data-upstream="vb365-demo"]', "data-mark") != "ok":
                failures.append("vb365-demo did not stay ok while VSPC was down")
            if page.get_attribute("#overall", "data-mark") != "degraded":
                failures.append("the overall mark is not degraded with one upstream down")

            vspc = start_vspc()
            procs.append(vspc)
            wait_port(vspc_port, vspc, "the VSPC simulator (again)")
            restarted = time.time()
            page.wait_for_selector(ok("vspc-demo"), timeout=(REFRESH_S + PROBE_S + 6) * 1000)
            print(f"vspc-demo recovered after {time.time() - restarted:.1f}s")
            time.sleep(REFRESH_S + 0.5)  # one more refresh: charts with the outage in them

            page.screenshot(path=args.screenshot, full_page=True)
            print(f"screenshot: {args.screenshot}")

            storage = page.evaluate("() => JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])")
            if storage != "[[],[]]":
                failures.append(f"the page stored something: {storage}")
            readable = page.evaluate("() => document.cookie")
            if "vgw_status=" in readable or admin_key in readable:
                failures.append(f"a cookie the page can read holds the session or the key: {readable!r}")
            session = [c for c in context.cookies() if c["name"] == "vgw_status"]
            if not session or not session[0]["httpOnly"] or session[0]["sameSite"] != "Strict" or session[0]["path"] != "/v1/status":
                failures.append(f"the session cookie is not HttpOnly, SameSite=Strict, Path=/v1/status: {session}")
            if any(admin_key in u for u in urls):
                failures.append("the key appeared in a request URL")
            if console_errors:
                failures.append(f"console errors: {console_errors}")
            if page_errors:
                failures.append(f"page errors: {page_errors}")

            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=2)
            phone.add_cookies(context.cookies())
            mobile = phone.new_page()
            mobile.goto(base + "/status")
            mobile.wait_for_selector(ok("vspc-demo"), timeout=10_000)
            overflow = mobile.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                failures.append(f"on a phone the page is {overflow}px wider than the screen")
            browser.close()

        stop_traffic.set()
        traffic_thread.join(5)
        gateway_log.flush()
        log = open(f"{work}/gateway.log", encoding="utf-8", errors="replace").read()
        if admin_key in log:
            failures.append("the key appeared in the gateway's log")
        if failures:
            print("FAILED:\n  " + "\n  ".join(failures))
            print("gateway log (tail):\n" + log[-3000:])
            return 1
        print("status page: ok")
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
