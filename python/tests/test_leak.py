"""No leak over 10,000 calls: encode (one text and a list), tokenize and a
failing call, 10,000 calls in all after 1,000 warm-up calls; resident memory
(VmRSS) may grow by at most 2 MiB. A leak of the per-call buffers (the text
pointers, the ids, the error path) of even 200 bytes a call would be 2 MB."""
import numpy as np

import qembed

BOUND = 2 * 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def calls(m, n):
    for i in range(n):
        k = i % 4
        if k == 0:
            m.encode("leak check %d" % i)
        elif k == 1:
            m.encode(["leak", "check %d" % i, "three"], truncate_dim=32)
        elif k == 2:
            m.tokenize(["leak check %d " % i + "word " * 500])  # ~2 KiB of ids a call
        else:
            try:
                m.encode(["fine", ""])
            except ValueError:
                pass


def test_rss_flat_over_10000_calls(model_dir):
    m = qembed.Model(model_dir, threads=1)
    try:
        calls(m, 1000)
        before = rss()
        calls(m, 10000)
        after = rss()
        print("VmRSS before %d after %d growth %d bytes" % (before, after, after - before))
        assert after - before <= BOUND, (before, after)
        assert np.isfinite(m.encode("still works")).all()
    finally:
        m.close()
