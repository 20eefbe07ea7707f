"""qembed.dask on a distributed.LocalCluster of 2 worker processes (one thread
each, one library thread each: the machine may have only 2 cores): 2,000
texts give the same vectors as one process, in order, the model is loaded
once per worker process, and a worker killed mid-job (SIGKILL, by this test)
costs a retry, not a wrong or missing row."""
import os
import signal
import sys
import tempfile
import threading
import time

import cloudpickle
import numpy as np
import pytest

import qembed
import qembed.dask as qd

dask = pytest.importorskip("dask")
db = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")

# The helpers below run on the workers; ship them by value (the workers
# cannot import this test file as a module).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N = 2000
TEXTS = ["document %d: %s" % (i, "lorem ipsum " * (i % 13)) for i in range(N)]
MODEL_KW = {"threads": 1}
BATCH = 16  # partitions of 50 texts: batches of 16 fall the same way in one process


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def reference(model_dir):
    m = qembed.Model(model_dir, threads=1)
    try:
        # One process, the same batches as the partitions of 50 below.
        return np.concatenate([m.encode(TEXTS[i:i + 50], batch_size=BATCH) for i in range(0, N, 50)])
    finally:
        m.close()


def _loads():
    import qembed.dask
    return (os.getpid(), qembed.dask.load_count)


def test_bag_equals_one_process(client, model_dir, reference):
    bag = db.from_sequence(TEXTS, npartitions=N // 50)
    vecs = qd.embed_bag(bag, model_dir, model_kwargs=MODEL_KW, batch_size=BATCH)
    got = np.stack(vecs.compute())
    assert got.shape == (N, 64) and got.dtype == np.float32
    assert np.array_equal(got, reference)
    # 40 partitions over 2 workers, one model load per worker process
    loads = client.run(_loads)
    assert len(loads) == 2 and all(n == 1 for _, n in loads.values()), loads
    # a second job on the same workers loads nothing new
    arr = qd.embed_to_array(bag, model_dir, 64, model_kwargs=MODEL_KW, batch_size=BATCH)
    assert np.array_equal(arr.compute(), reference)
    assert all(n == 1 for _, n in client.run(_loads).values())


def test_dataframe_column_keeps_index_and_order(client, model_dir, reference):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    df = pd.DataFrame({"id": np.arange(N) * 3, "text": TEXTS})
    ddf = dd.from_pandas(df, npartitions=N // 50)
    ddf["embedding"] = qd.embed_series(ddf["text"], model_dir, model_kwargs=MODEL_KW,
                                       batch_size=BATCH)
    out = ddf.compute()
    assert list(out["id"]) == list(df["id"])
    assert np.array_equal(np.stack(out["embedding"].to_list()), reference)


def _slow_start(texts, marker_dir):
    # Upstream of embed_bag: the first time a worker runs a partition it says
    # so (its pid) and pauses, so the test can kill it mid-job.
    texts = list(texts)
    mark = os.path.join(marker_dir, "started-%d" % os.getpid())
    if not os.path.exists(os.path.join(marker_dir, "killed")) and not os.path.exists(mark):
        with open(mark, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(3)
    return texts


def test_killed_worker_costs_a_retry_not_a_row(client, model_dir, reference):
    with tempfile.TemporaryDirectory() as marker_dir:
        bag = db.from_sequence(TEXTS, npartitions=N // 50).map_partitions(_slow_start, marker_dir)
        vecs = qd.embed_bag(bag, model_dir, model_kwargs=MODEL_KW, batch_size=BATCH)
        before = set(client.run(os.getpid).values())
        future = client.compute(vecs)
        victim = None
        deadline = time.time() + 60
        while victim is None and time.time() < deadline:
            for name in os.listdir(marker_dir):
                if name.startswith("started-"):
                    victim = int(name.split("-")[1])
                    break
            time.sleep(0.05)
        assert victim in before, (victim, before)
        open(os.path.join(marker_dir, "killed"), "w").close()
        os.kill(victim, signal.SIGKILL)
        got = np.stack(future.result(timeout=180))
        assert got.shape == (N, 64)
        assert np.array_equal(got, reference)
        # the killed process is gone; the nanny started a fresh worker
        client.wait_for_workers(2, timeout=60)
        after = set(client.run(os.getpid).values())
        assert victim not in after
