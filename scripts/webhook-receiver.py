#!/usr/bin/env python3
"""A webhook receiver for the change feed's tests, as a process of its own.

Each POST is verified with the published `standardwebhooks` library (PyPI), the reference
implementation of the Standard Webhooks specification, not with the gateway's code; it is
appended as one JSON line to --out: {"webhookId", "verified", "event" (the body as JSON)}.
It answers 204, or 400 when the signature does not verify, or the status written in
--status-file while that file exists (a receiver that is failing).

  python3 scripts/webhook-receiver.py --secret whsec_… --out deliveries.jsonl --port-file port
"""
import argparse
import http.server
import json
import os
import signal
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="where to write the bound port")
    parser.add_argument("--status-file", help="while it exists, answer the status it holds")
    args = parser.parse_args()
    verifier = Webhook(args.secret)
    # A test stops it with SIGTERM: exit at once, whatever the parent left blocked or ignored.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if args.status_file and os.path.exists(args.status_file):
                with open(args.status_file) as f:
                    status = int(f.read().strip() or "503")
                self.send_response(status)
                self.end_headers()
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verifier.verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            with open(args.out, "a") as f:
                f.write(json.dumps({"webhookId": headers.get("webhook-id"), "verified": verified, "event": event}) + "\n")
            self.send_response(204 if verified else 400)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
