"""An HTTPS upstream on loopback for tests/broker.rs, with a test CA made by the openssl CLI.

Usage: broker_upstream.py DIR
Writes DIR/ca.pem (the CA to trust through SSL_CERT_FILE), DIR/port when listening, and
one JSON line per request to DIR/requests.jsonl: method, path, headers (as received).

Endpoints (any prefix):
  .../models               an OpenAI model list
  .../chat/completions     an OpenAI chat completion; with "stream": true, SSE: event 1,
                           then it waits for DIR/signal (created by the client once it saw
                           event 1) before the rest; without the signal within 60 s it
                           sends an event saying so, which the client reports as a failure
  .../messages             an Anthropic message
  .../echo                 echoes the credential headers it got, in the body and a header
  .../redirect             302 to another path of this server
  .../token                an OAuth client-credentials token response
"""

import json
import os
import ssl
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]


def make_ca():
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=DIR)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=agentcred test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
        "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(DIR, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)
                if size == 0:
                    return data
                data += chunk[:-2]
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length)

    def send_json(self, status, value, extra=()):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def handle_any(self):
        body = self.body()
        self.record(body)
        path = self.path.split("?")[0]
        if path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [
                {"id": "gpt-test", "object": "model", "created": 0, "owned_by": "test"}]})
        elif path.endswith("/chat/completions"):
            request = json.loads(body or b"{}")
            if request.get("stream"):
                self.stream_chat()
            else:
                self.send_json(200, completion("hello"))
        elif path.endswith("/messages"):
            self.send_json(200, {
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                "content": [{"type": "text", "text": "hello from upstream"}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 3}})
        elif path.endswith("/echo"):
            got = self.headers.get("authorization") or self.headers.get("x-api-key") or ""
            self.send_json(200, {"you_sent": got}, [("x-echo", got)])
        elif path.endswith("/token"):
            self.send_json(200, {"access_token": "minted-access-token-0123456789",
                                 "token_type": "Bearer", "expires_in": 3600})
        elif path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()
        else:
            self.send_json(404, {"error": "no such path"})

    def stream_chat(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def event(text):
            self.chunk(b"data: " + json.dumps(chunk_of(text)).encode() + b"\n\n")

        event("first")
        signal = os.path.join(DIR, "signal")
        for _ in range(600):
            if os.path.exists(signal):
                event("second")
                break
            time.sleep(0.1)
        else:
            event("NO-SIGNAL: the client did not see event 1 before the stream ended")
        self.chunk(b"data: [DONE]\n\n")
        self.chunk(b"")

    do_GET = handle_any
    do_POST = handle_any


def completion(text):
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-test",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def chunk_of(text):
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-test",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def main():
    make_ca()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(DIR, "server.pem"), os.path.join(DIR, "server.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(os.path.join(DIR, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
