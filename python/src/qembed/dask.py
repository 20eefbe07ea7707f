"""qembed.dask: embed a Dask Bag or DataFrame column, one model per worker process.

The recipe (README, "Dask"): partitions of texts go through `map_partitions`;
the function that runs on a worker gets its model from `get_model`, which
loads it the first time a process asks and keeps it for every later
partition and every later job in that process (a distributed worker process
lives across tasks), so a model is loaded once per worker process, not once
per partition. Partitions keep their order (a Bag's partitions and a
DataFrame's index are ordered), so vectors come back in input order.

Each task is a pure function of its partition: when a worker dies, the
scheduler re-runs its tasks elsewhere (and re-runs the ones whose results
were held only in the dead worker's memory), so a lost worker costs a retry,
not a wrong or missing row.

    import dask.bag as db, numpy as np, qembed.dask
    texts = db.read_text("corpus-*.txt").map(str.rstrip)
    vecs = qembed.dask.embed_bag(texts, "/models/Qwen3-Embedding-0.6B",
                                 model_kwargs={"threads": 4})
    matrix = np.stack(vecs.compute())

dask (dask.bag) is imported by the helpers; dask.dataframe (with pandas) only
by embed_series.
"""
import threading
from typing import Any, Dict, List, Optional

import numpy as np

from ._model import Model

_models: Dict[str, Model] = {}
_lock = threading.Lock()
load_count = 0  # models this process has loaded (the tests check it is 1 per worker)


def get_model(model: str, **model_kwargs: Any) -> Model:
    """This process's Model for (model, model_kwargs), loaded on first use and
    kept for the life of the process. Thread-safe: worker threads of one
    process share the one model (a Model serves threads concurrently)."""
    global load_count
    key = repr((str(model), sorted(model_kwargs.items())))
    with _lock:
        m = _models.get(key)
        if m is None:
            m = Model(model, **model_kwargs)
            _models[key] = m
            load_count += 1
    return m


def encode_partition(texts: Any, model: str, model_kwargs: Optional[Dict[str, Any]] = None,
                     **encode_kwargs: Any) -> np.ndarray:
    """Embeds one partition (any iterable of str) with this process's model:
    a float32 matrix, row i for text i. encode_kwargs go to Model.encode
    (prompt_name, truncate_dim, batch_size, ...); the progress bar is off."""
    encode_kwargs.setdefault("show_progress_bar", False)
    return get_model(model, **(model_kwargs or {})).encode(list(texts), **encode_kwargs)


def _bag_partition(texts: Any, model: str, model_kwargs: Optional[Dict[str, Any]],
                   encode_kwargs: Dict[str, Any]) -> List[np.ndarray]:
    return list(encode_partition(texts, model, model_kwargs, **encode_kwargs))


def _series_partition(s: Any, model: str, model_kwargs: Optional[Dict[str, Any]],
                      encode_kwargs: Dict[str, Any]) -> Any:
    import pandas as pd
    rows = encode_partition(s.tolist(), model, model_kwargs, **encode_kwargs)
    return pd.Series(list(rows), index=s.index, name=s.name, dtype=object)


def embed_bag(bag: Any, model: str, *, model_kwargs: Optional[Dict[str, Any]] = None,
              **encode_kwargs: Any) -> Any:
    """A dask.bag.Bag of vectors (1-D float32 arrays), one per text of `bag`,
    in the same order and partitions. `model` is the path or repo id each
    worker loads (it must exist on every worker); model_kwargs go to
    qembed.Model, encode_kwargs to Model.encode."""
    return bag.map_partitions(_bag_partition, model, model_kwargs, dict(encode_kwargs))


def embed_series(series: Any, model: str, *, model_kwargs: Optional[Dict[str, Any]] = None,
                 **encode_kwargs: Any) -> Any:
    """A dask.dataframe.Series of vectors (object dtype, each a 1-D float32
    array) with the index and divisions of `series` (a DataFrame column of
    str), e.g. ddf["embedding"] = embed_series(ddf["text"], MODEL)."""
    return series.map_partitions(_series_partition, model, model_kwargs, dict(encode_kwargs),
                                 meta=(series.name, "object"))


def embed_to_array(collection: Any, model: str, dims: int, *,
                   model_kwargs: Optional[Dict[str, Any]] = None, **encode_kwargs: Any) -> Any:
    """A dask.array.Array, shape (n_texts, dims) float32, one chunk per
    partition of `collection` (a Bag of str or a Series of str), in order;
    chunk lengths are unknown until computed. `dims` is the vector size:
    the model's hidden size, or truncate_dim when given. Suits writing the
    vectors where they are computed (da.to_zarr, da.to_npy_stack)."""
    import dask
    import dask.array as da
    if "truncate_dim" in encode_kwargs and encode_kwargs["truncate_dim"] not in (None, dims):
        raise ValueError("dims %r differs from truncate_dim %r" % (dims, encode_kwargs["truncate_dim"]))
    enc = dask.delayed(encode_partition, pure=True)
    parts = [da.from_delayed(enc(p, model, model_kwargs, **encode_kwargs), shape=(np.nan, dims),
                             dtype=np.float32)
             for p in collection.to_delayed()]
    return da.concatenate(parts, axis=0, allow_unknown_chunksizes=True)
