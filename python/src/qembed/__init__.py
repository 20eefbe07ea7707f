"""qembed: text embeddings with the Qwen3-Embedding family, from Python.

A binding (CFFI, API mode) to libqembed's public C API. The API follows
sentence-transformers::

    import qembed
    m = qembed.Model("Qwen/Qwen3-Embedding-0.6B")        # or a directory
    q = m.encode("What is the capital of China?", prompt_name="query")
    d = m.encode(["The capital of China is Beijing.", "Gravity is a force."])
    print(m.similarity(q, d))

`qembed.dask` embeds Dask Bags and DataFrame columns (imported on demand).
"""
from ._errors import Error, InputError, ModelError, PlacementError
from ._model import Model, library_version

__version__ = "0.1.0"
__all__ = ["Model", "Error", "InputError", "ModelError", "PlacementError", "library_version",
           "__version__"]
