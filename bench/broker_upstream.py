"""Plain-HTTP upstream on loopback for bench/broker.sh: /small answers 2 bytes, /big?mib=N
streams N MiB of base64 text (what LLM APIs send looks like that to the scrubber) with a
Content-Length. Writes its port to the file named by argv[1]."""

import base64
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = base64.b64encode(os.urandom(3 << 18))  # 1 MiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # No Nagle: a small body written after the headers must not wait for an ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        if self.path.startswith("/v1/big") or self.path.startswith("/big"):
            mib = int(self.path.split("mib=")[1]) if "mib=" in self.path else 1024
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(mib * len(BLOCK)))
            self.end_headers()
            for _ in range(mib):
                self.wfile.write(BLOCK)
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
