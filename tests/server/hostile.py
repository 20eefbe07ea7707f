#!/usr/bin/python3
"""Hostile HTTP clients for the server tests (loopback only, bounded in time).

Each subcommand plays one kind of abusive client against a running
`qembed serve` and prints one line per check ("ok: ..." or "FAIL: ...");
the exit status is the number of failed checks. Only the standard library.

  framing PORT            malformed framing: each case must get 400/501 and a
                          closed connection, never a second response
  slowloris PORT N SECS   N connections trickle header bytes; /health must
                          still answer 200 within SECS
  abandon PORT N SIZE     N uploads announce SIZE bytes, send 90 %, close;
                          the next request must not get 503, within 10 s
  unread PORT N SIZE      N clients POST /tokenize with SIZE bytes of text and
                          never read; prints the answers /health gets meanwhile
  fuzz PORT SECONDS SEED  random and mutated request bytes; the server must
                          keep answering /health
"""
import os
import random
import socket
import sys
import time

FAILS = 0


def ok(msg):
    print("ok: " + msg, flush=True)


def fail(msg):
    global FAILS
    FAILS += 1
    print("FAIL: " + msg, flush=True)


def conn(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, limit_s):
    """Reads until the peer closes or limit_s passes. Returns (bytes, closed)."""
    data = b""
    end = time.monotonic() + limit_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def statuses(data):
    return [int(line.split()[1]) for line in data.split(b"\r\n")
            if line.startswith(b"HTTP/1.") and len(line.split()) >= 2 and line.split()[1].isdigit()]


def health(port, limit_s):
    """GET /health on a new connection; the status, or 0 when none came in time."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            s = conn(port, timeout=max(0.1, end - time.monotonic()))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data, _ = read_all(s, max(0.1, end - time.monotonic()))
            s.close()
            st = statuses(data)
            if st:
                return st[0]
        except OSError:
            time.sleep(0.05)
    return 0


SMUGGLE = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
BODY = b'{"input":"x"}'
FRAMING = [
    # (name, bytes, acceptable statuses)
    ("conflicting Content-Length (0 then %d) with a request behind" % len(SMUGGLE),
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
     b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLE) + SMUGGLE, (400,)),
    ("repeated equal Content-Length",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n"
     % (len(BODY), len(BODY)) + BODY, (400,)),
    ("Content-Length list with a request behind",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: %d, %d\r\n\r\n"
     % (len(SMUGGLE), len(SMUGGLE)) + SMUGGLE, (400,)),
    ("Transfer-Encoding chunked with Content-Length",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
     b"0\r\n\r\n" + SMUGGLE, (400,)),
    ("unknown Transfer-Encoding gzip",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n" + BODY, (400, 501)),
    ("Transfer-Encoding 'gzip, chunked'",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", (400, 501)),
    ("NUL in the path (%00)", b"GET /health%00x HTTP/1.1\r\nHost: t\r\n\r\n", (400,)),
    ("control byte in the path (%01)", b"GET /health%01 HTTP/1.1\r\nHost: t\r\n\r\n", (400,)),
    ("control byte in a header value", b"GET /health HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", (400,)),
    ("chunk size ffffffffffffffff",
     b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffff\r\nabc", (400, 413, None)),
]


def cmd_framing(port, deadline_s):
    for name, raw, want in FRAMING:
        try:
            s = conn(port)
            s.sendall(raw)
            data, closed = read_all(s, deadline_s)
            s.close()
        except OSError as e:
            fail("%s: socket error %s" % (name, e))
            continue
        st = statuses(data)
        if not st and closed and None in want:
            # libmicrohttpd 0.9.75 neither answers nor closes; the body-rate
            # deadline closes it.
            ok("%s -> closed without an answer (body deadline)" % name)
        elif not st:
            fail("%s: no answer in %.0f s (closed=%s)" % (name, deadline_s, closed))
        elif any(x not in want for x in st) or not closed:
            # (libmicrohttpd 0.9.75 writes the header block of its own 400
            # twice for a Content-Length list: one answer, all 400.)
            fail("%s: answers %s, closed=%s; want one of %s then close" % (name, st, closed, want))
        else:
            ok("%s -> %d and closed" % (name, st[0]))
    # Non-HTTP bytes (a TLS ClientHello): 400 or a close, within the deadline.
    hello = bytes.fromhex("16030100c4010000c00303") + os.urandom(180)
    s = conn(port)
    s.sendall(hello)
    data, closed = read_all(s, deadline_s)
    s.close()
    st = statuses(data)
    if closed and (not st or st[0] == 400):
        ok("TLS bytes -> %s and closed" % (st[0] if st else "no answer"))
    else:
        fail("TLS bytes: answers %s, closed=%s within %.0f s" % (st, closed, deadline_s))
    h = health(port, 5)
    (ok if h == 200 else fail)("server still answers /health after the framing cases (%d)" % h)


def cmd_slowloris(port, n, secs):
    socks = []
    line = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 4000
    for _ in range(n):
        try:
            s = conn(port, timeout=1)
            s.setblocking(False)
            socks.append([s, 0])
        except OSError:
            pass
    print("opened %d slow connections" % len(socks), flush=True)
    t0 = time.monotonic()
    got = 0
    # Trickle one byte per connection per second; reopen closed ones, as an
    # attacker would, while a fair client asks /health.
    import threading
    result = {}

    def probe():
        time.sleep(1.5)
        result["status"] = health(port, secs)
    th = threading.Thread(target=probe)
    th.start()
    while th.is_alive():
        for e in socks:
            try:
                if e[1] < len(line):
                    e[0].send(line[e[1]:e[1] + 1])
                    e[1] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                try:
                    e[0].close()
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", port))
                    e[0], e[1] = s, 0
                except OSError:
                    pass
        time.sleep(1.0)
    got = result.get("status", 0)
    for e in socks:
        e[0].close()
    if got == 200:
        ok("/health answered 200 beside %d slow-header connections (%.1f s)" % (n, time.monotonic() - t0))
    else:
        fail("/health got %s within %d s beside %d slow-header connections" % (got or "no answer", secs, n))


def cmd_abandon(port, n, size):
    body = b'{"input":"' + b"a" * (size - 12) + b'"}'
    for _ in range(n):
        try:
            s = conn(port)
            s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            s.sendall(body[:len(body) * 9 // 10])
            s.close()
        except OSError as e:
            fail("abandoned upload: %s" % e)
    print("%d uploads of %d bytes abandoned at 90 %%" % (n, size), flush=True)
    end = time.monotonic() + 10
    last = None
    while time.monotonic() < end:
        s = conn(port)
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        data, _ = read_all(s, 5)
        s.close()
        st = statuses(data)
        last = st[0] if st else 0
        if last == 200:
            break
        time.sleep(0.2)
    if last == 200:
        ok("a request after %d abandoned uploads -> 200 (%.1f s later)" % (n, 10 - (end - time.monotonic())))
    else:
        fail("a request after %d abandoned uploads still gets %s after 10 s" % (n, last))


def cmd_unread(port, n, size):
    body = b'{"inputs":"' + (b"word " * (size // 5)) + b'"}'
    socks = []
    for _ in range(n):
        s = conn(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        socks.append(s)
    print("%d clients sent %d-byte /tokenize requests and do not read" % (n, len(body)), flush=True)
    time.sleep(float(os.environ.get("UNREAD_HOLD_S", "3")))
    h = health(port, 10)
    (ok if h == 200 else fail)("/health beside %d non-reading clients -> %d" % (n, h))
    sys.stdout.flush()
    # The caller measures the server's memory now, then lets us go.
    if os.environ.get("UNREAD_SIGNAL"):
        open(os.environ["UNREAD_SIGNAL"], "w").close()
        while not os.path.exists(os.environ["UNREAD_SIGNAL"] + ".done"):
            time.sleep(0.1)
    for s in socks:
        s.close()


def cmd_fuzz(port, secs, seed):
    rng = random.Random(seed)
    seeds = [raw for _, raw, _ in FRAMING] + [
        b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\n" + BODY,
        b"POST /embed HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + BODY + b"\r\n0\r\n\r\n",
        b"GET /metrics HTTP/1.0\r\n\r\n", SMUGGLE]
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.randint(0, 3)
            i = rng.randint(0, max(0, len(raw) - 1))
            if op == 0 and raw:
                raw[i] = rng.randint(0, 255)
            elif op == 1:
                raw[i:i] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))
            elif op == 2 and raw:
                del raw[i:i + rng.randint(1, 8)]
            else:
                raw[i:i] = rng.choice([b"\r\n", b"\x00", b"Content-Length: 5\r\n", b"%00", b":", b" "])
        try:
            s = conn(port, timeout=2)
            s.sendall(bytes(raw))
            s.shutdown(socket.SHUT_WR)
            read_all(s, 2)
            s.close()
        except OSError:
            pass
        n += 1
    h = health(port, 10)
    (ok if h == 200 else fail)("%d fuzzed requests in %d s (seed %d); /health -> %d" % (n, secs, seed, h))


def main(argv):
    cmd, port = argv[1], int(argv[2])
    if cmd == "framing":
        cmd_framing(port, float(argv[3]) if len(argv) > 3 else 5)
    elif cmd == "slowloris":
        cmd_slowloris(port, int(argv[3]), int(argv[4]))
    elif cmd == "abandon":
        cmd_abandon(port, int(argv[3]), int(argv[4]))
    elif cmd == "unread":
        cmd_unread(port, int(argv[3]), int(argv[4]))
    elif cmd == "fuzz":
        cmd_fuzz(port, int(argv[3]), int(argv[4]))
    else:
        print(__doc__)
        return 2
    return min(FAILS, 100)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
