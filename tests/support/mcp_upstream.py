"""A plain-HTTP upstream on 127.0.0.1 for tests/mcp.rs (loopback may be plain HTTP).

Usage: mcp_upstream.py DIR
Writes DIR/port when listening, and one JSON line per request to DIR/requests.jsonl
(method, path with query, headers, body), as received.

Endpoints (under any prefix):
  .../echo       200, JSON: the method, path, the credential header it got, and the body
  .../redirect   302 to .../echo?key=<the credential header's value>
  .../big        200, 200 KiB of text with the credential header's value at the end
  anything else  404
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
            f.write(json.dumps({
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }) + "\n")
        key = self.headers.get("x-api-key", "")
        route = self.path.split("?")[0]
        if route.endswith("/echo"):
            self.send(200, "application/json", json.dumps({
                "method": self.command, "path": self.path, "x-api-key": key,
                "body": body.decode("utf-8", "replace"),
            }).encode())
        elif route.endswith("/redirect"):
            self.send(302, "text/plain", b"moved", [("Location", "/v1/echo?key=" + key)])
        elif route.endswith("/big"):
            self.send(200, "text/plain", b"a" * (200 * 1024) + key.encode())
        else:
            self.send(404, "text/plain", b"not found")

    def send(self, status, content_type, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
