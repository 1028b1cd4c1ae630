"""Run by bench/broker.sh under `agentcred exec --broker`: compares requests sent directly
to the upstream ($DIRECT_URL) with the same requests through the broker ($OPENAI_BASE_URL),
on one keep-alive connection each, interleaved so that both see the same machine load.
Prints p50 and p99 per path and the difference, in milliseconds."""

import http.client
import os
import sys
import time
from urllib.parse import urlsplit

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def connect(url):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port), parts.path.rstrip("/")


def once(conn, path, auth):
    start = time.perf_counter_ns()
    conn.request("GET", path, headers=auth)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter_ns() - start
    assert response.status == 200 and body == b"ok", (response.status, body)
    return elapsed


direct, direct_prefix = connect(os.environ["DIRECT_URL"])
broker, broker_prefix = connect(os.environ["OPENAI_BASE_URL"])
key = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
times = {"direct": [], "broker": []}
for i in range(N + 100):
    a = once(direct, direct_prefix + "/v1/small", key)
    b = once(broker, broker_prefix + "/small", key)
    if i >= 100:  # warm-up
        times["direct"].append(a)
        times["broker"].append(b)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] / 1e6


for p, label in ((0.5, "p50"), (0.99, "p99")):
    d, b = pct(times["direct"], p), pct(times["broker"], p)
    print(f"{label}: direct {d:.3f} ms, broker {b:.3f} ms, added {b - d:.3f} ms")
