"""One Model called from many Python threads at once: each call borrows a
qembed_ctx of its own from the model's pool, so results equal the
single-threaded ones bit for bit (same batches, same bits)."""
import threading

import numpy as np
import pytest

import qembed

TEXTS = ["thread text %d %s" % (i, "x " * (i % 11)) for i in range(96)]


@pytest.mark.parametrize("threads,max_contexts", [(1, 3), (None, None)])
def test_concurrent_calls_equal_serial(model_dir, threads, max_contexts):
    m = qembed.Model(model_dir, threads=threads, max_contexts=max_contexts)
    try:
        ref = m.encode(TEXTS, batch_size=8)
        ref_tok = m.tokenize(TEXTS[:5])
        results, errors = {}, []
        barrier = threading.Barrier(8)

        def worker(k):
            try:
                barrier.wait()
                for rep in range(5):
                    lo = ((k * 3 + rep * 5) % 8) * 8  # whole batches of 8: the same bits
                    got = m.encode(TEXTS[lo:lo + 32], batch_size=8)
                    if not np.array_equal(got, ref[lo:lo + 32]):
                        errors.append("thread %d rep %d: vectors differ" % (k, rep))
                    if m.tokenize(TEXTS[:5]) != ref_tok:
                        errors.append("thread %d rep %d: ids differ" % (k, rep))
                    try:
                        m.encode(["ok", ""])
                        errors.append("thread %d: empty text accepted" % k)
                    except ValueError:
                        pass
                results[k] = True
            except Exception as e:  # reported below
                errors.append("thread %d: %r" % (k, e))

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors, errors
        assert len(results) == 8
        # never more contexts than the pool's limit
        assert len(m._pool._all) <= m.info["max_contexts"]
        if max_contexts:
            assert m.info["max_contexts"] == max_contexts
    finally:
        m.close()
