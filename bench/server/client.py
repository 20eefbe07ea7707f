"""Load client for bench_server.sh (stdlib only; one keep-alive connection per
client thread, so client overhead is a fraction of a millisecond).
  throughput: python3 client.py tp URL TEXTS_FILE CLIENTS ROUNDS
     each client sends one text per request, ROUNDS requests, after one untimed
     warm-up round; prints texts/s over the timed rounds.
  latency:    python3 client.py lat URL TEXT RUNS
     one request at a time on an otherwise idle server; prints the p50 in ms."""
import http.client, json, sys, threading, time, urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=3600), u.path


def post(c, path, text):
    body = json.dumps({"input": text})
    c.request("POST", path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit("HTTP %d: %s" % (r.status, data[:200]))
    return json.loads(data)["usage"]["prompt_tokens"]


def metric(url, key):
    c, _ = conn(url)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.split("\n"):
        if line.startswith(key + " "):
            return float(line.split()[1])
    return 0.0


def throughput(url, texts_file, clients, rounds):
    texts = [t for t in open(texts_file).read().split("\n") if t]
    start = threading.Barrier(clients + 1)
    done = threading.Barrier(clients + 1)
    tokens = [0] * clients

    failed = []

    def worker(i):
        try:
            work(i)
        except BaseException as e:  # a failed client must not leave the others waiting
            failed.append("client %d: %r" % (i, e))
            start.abort()
            done.abort()

    def work(i):
        c, path = conn(url)
        post(c, path, texts[i % len(texts)])  # warm-up round, untimed
        c.close()
        start.wait()
        # A fresh connection: the one above may have idled while the others
        # finished their warm-up.
        c, path = conn(url)
        for r in range(rounds):
            tokens[i] += post(c, path, texts[(i + r) % len(texts)])
        done.wait()

    th = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in th:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.monotonic()
    busy0, passes0 = metric(url, "qembed_inference_seconds_sum"), metric(url, "qembed_batches_total")
    try:
        done.wait()
    except threading.BrokenBarrierError:
        pass
    dt = time.monotonic() - t0
    busy1, passes1 = metric(url, "qembed_inference_seconds_sum"), metric(url, "qembed_batches_total")
    for t in th:
        t.join()
    if failed:
        raise SystemExit("throughput run failed: " + "; ".join(failed[:3]))
    n = clients * rounds
    print("server_requests %d\nserver_avg_tokens %.1f\nserver_seconds %.3f\nserver_texts_per_s %.3f"
          % (n, sum(tokens) / n, dt, n / dt))
    # Forward-pass time inside the timed window (a pass straddling its start
    # is counted whole, so this can slightly exceed the wall time).
    print("server_busy_s %.3f\nserver_passes %d" % (busy1 - busy0, passes1 - passes0))


def latency(url, text, runs):
    c, path = conn(url)
    post(c, path, text)
    lat = []
    for _ in range(runs):
        t0 = time.monotonic()
        post(c, path, text)
        lat.append(time.monotonic() - t0)
    lat.sort()
    print("server_p50_ms %.3f\nserver_latency_runs %d" % (lat[len(lat) // 2] * 1e3, runs))


if sys.argv[1] == "tp":
    throughput(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
else:
    latency(sys.argv[2], sys.argv[3], int(sys.argv[4]))
