#!/usr/bin/python3
"""Head-of-line latency: short queries beside 2,000-input requests.

One client keeps posting a 2,000-input /v1/embeddings request (about 20
tokens each) back to back; another sends one short query at a time, 20 ms
apart, and records its latency. Prints the short queries' p50/p99 and the
big requests' mean time. Loopback, standard library only.

  hol.py PORT SECONDS
"""
import http.client
import json
import sys
import threading
import time

port, secs = int(sys.argv[1]), float(sys.argv[2])
BIG = json.dumps({"input": ["document %d: some words that make an input about twenty tokens long, as a passage" % i
                            for i in range(2000)]})
SHORT = json.dumps({"input": "a short query"})
stop = time.monotonic() + secs
big_times = []


def post(conn, body):
    conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def big_loop():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    while time.monotonic() < stop:
        t0 = time.monotonic()
        st = post(c, BIG)
        big_times.append((time.monotonic() - t0, st))


th = threading.Thread(target=big_loop)
th.start()
time.sleep(0.3)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
lat, codes = [], {}
while time.monotonic() < stop:
    t0 = time.monotonic()
    st = post(c, SHORT)
    lat.append(time.monotonic() - t0)
    codes[st] = codes.get(st, 0) + 1
    time.sleep(0.02)
th.join()
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3
print("short queries: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms, statuses %s; big requests: %d, mean %.2f s"
      % (len(lat), p(0.50), p(0.99), lat[-1] * 1e3, codes, len(big_times),
         sum(t for t, _ in big_times) / max(1, len(big_times))))
