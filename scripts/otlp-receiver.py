#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver for the tests: what a collector would get from the gateway.

POST /v1/traces takes an ExportTraceServiceRequest, as protobuf (application/x-protobuf) or as
JSON (application/json), decoded with the published `opentelemetry-proto` package (PyPI), and
answers an ExportTraceServiceResponse in the same encoding. GET /spans returns every span
received so far as a JSON list (ids in hex, attributes as plain values, the resource's
attributes and the encoding it came in). The port it listens on is written to --port-file.

    python3 scripts/otlp-receiver.py --port-file /tmp/otlp.port
"""
import argparse
import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SPANS = []
LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)


def attributes(pairs):
    return {kv.key: value(kv.value) for kv in pairs}


def record(request, encoding):
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "name": span.name,
                    "traceId": span.trace_id.hex(),
                    "spanId": span.span_id.hex(),
                    "parentSpanId": span.parent_span_id.hex(),
                    "kind": trace_pb2.Span.SpanKind.Name(span.kind),
                    "attributes": attributes(span.attributes),
                    "status": trace_pb2.Status.StatusCode.Name(span.status.code),
                    "startNs": span.start_time_unix_nano,
                    "endNs": span.end_time_unix_nano,
                    "resource": resource,
                    "encoding": encoding,
                })
    with LOCK:
        SPANS.extend(spans)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        content_type = self.headers.get("Content-Type", "")
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            if content_type.startswith("application/json"):
                json_format.Parse(body, request)
                encoding = "json"
            else:
                request.ParseFromString(body)
                encoding = "protobuf"
        except Exception as error:  # a body the collector could not read: 400, as a collector answers
            self.send_error(400, str(error))
            return
        record(request, encoding)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if encoding == "json":
            out, kind = json_format.MessageToJson(response).encode(), "application/json"
        else:
            out, kind = response.SerializeToString(), "application/x-protobuf"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        if self.path != "/spans":
            self.send_error(404)
            return
        with LOCK:
            out = json.dumps(SPANS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    # A test stops it with SIGTERM, which its parent may have blocked or set to be ignored (both
    # survive exec): stop on it whatever was inherited.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), Handler)
    with open(arguments.port_file, "w") as out:
        out.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
