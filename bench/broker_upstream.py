"""Upstream on loopback for bench/broker.sh: /small answers 2 bytes, /big?mib=N streams N MiB
of base64 text (what LLM APIs send looks like that to the scrubber) with a Content-Length.
Writes its port to the file named by argv[1]. With argv[2] and argv[3] (a PEM certificate
chain and its key) it serves HTTPS.

The big body goes out with sendfile(2) from a 1 MiB file (plain HTTP): the kernel copies
it, so Python is not what limits a throughput figure (it did, at 0.6 GB/s, with writes
from Python). Over TLS each 1 MiB block is one SSL_write."""

import base64
import os
import socket
import ssl
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = base64.b64encode(os.urandom(3 << 18))  # 1 MiB
_block_file = tempfile.TemporaryFile()
_block_file.write(BLOCK)
_block_file.flush()
BLOCK_FD = _block_file.fileno()
TLS = len(sys.argv) > 3


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
            self.wfile.flush()
            if TLS:
                for _ in range(mib):
                    self.wfile.write(BLOCK)
                return
            out = self.connection.fileno()
            for _ in range(mib):
                sent = 0
                while sent < len(BLOCK):
                    sent += os.sendfile(out, BLOCK_FD, sent, len(BLOCK) - sent)
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
if TLS:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
