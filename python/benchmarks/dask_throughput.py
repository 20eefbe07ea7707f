#!/usr/bin/python3
"""Throughput of qembed.dask on a distributed.LocalCluster against one
process's Model.encode, on the same texts and the same cores.

  dask_throughput.py --model DIR [--texts 2000] [--workers 2] [--rounds 3]

Single process: one Model using every core (threads=None). Cluster:
--workers worker processes, 1 Dask thread each, each model with
cores/workers library threads. Both are warmed (model loaded, one job run)
before timing; rounds alternate A/B so a busy minute hits both. Prints
texts/s per round and the median ratio cluster/single. Cluster start and
model loads are reported separately (paid once per job, not per text).
"""
import argparse
import os
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=0, help="default: 4 per worker")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    import dask.bag as db
    import distributed

    import qembed
    import qembed.dask as qd

    cores = len(os.sched_getaffinity(0))
    per_worker = max(1, cores // a.workers)
    parts = a.partitions or 4 * a.workers
    texts = ["document %d: %s" % (i, "lorem ipsum dolor " * (i % 13)) for i in range(a.texts)]

    m = qembed.Model(a.model)
    m.encode(texts[:64])
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    t_start = time.perf_counter() - t0
    bag = db.from_sequence(texts, npartitions=parts)
    vecs = qd.embed_bag(bag, a.model, model_kwargs={"threads": per_worker})
    t0 = time.perf_counter()
    first = np.stack(vecs.compute())
    t_first = time.perf_counter() - t0

    single, dist = [], []
    for r in range(a.rounds):
        t0 = time.perf_counter()
        ref = m.encode(texts)
        single.append(len(texts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        got = np.stack(vecs.compute())
        dist.append(len(texts) / (time.perf_counter() - t0))
        cos = (got * ref).sum(1).min()
        print("round %d: single %.1f texts/s, cluster %.1f texts/s (min cosine %.7f)"
              % (r + 1, single[-1], dist[-1], cos), flush=True)
    print("cores %d, workers %d x %d library threads, %d partitions, %d texts"
          % (cores, a.workers, per_worker, parts, len(texts)))
    print("cluster start %.2f s; first job (model load on each worker) %.2f s" % (t_start, t_first))
    print("median: single %.1f texts/s, cluster %.1f texts/s, ratio %.2f"
          % (statistics.median(single), statistics.median(dist),
             statistics.median(d / s for d, s in zip(dist, single))))
    assert first.shape == (len(texts), m.get_sentence_embedding_dimension())
    client.close()
    cluster.close()
    m.close()


if __name__ == "__main__":
    main()
