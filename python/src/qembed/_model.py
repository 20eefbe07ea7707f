"""qembed.Model: one loaded model and the sentence-transformers-style calls on it.

Threading: the qembed_model handle is immutable and shared by every thread;
a qembed_ctx (activations, thread pool) is one-thread-at-a-time, so each call
borrows a context from a small pool for the duration of one batch and gives
it back. The pool holds at most `max_contexts` contexts (default: the cores
divided by the threads each context uses, at least 1), because every context
plans its own activation memory for max_batch_tokens and runs its own worker
threads: more would only oversubscribe the cores. Callers beyond that wait
(with the GIL released) for a free context. CFFI releases the GIL around
every library call, so tokenizing and inference overlap with other threads.
"""
import asyncio
import json
import logging
import os
import re
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ._errors import InputError, check
from ._qembed_cffi import ffi, lib

_log = logging.getLogger("qembed")
_LEVELS = {
    lib.QEMBED_LOG_DEBUG: logging.DEBUG,
    lib.QEMBED_LOG_INFO: logging.INFO,
    lib.QEMBED_LOG_WARN: logging.WARNING,
    lib.QEMBED_LOG_ERROR: logging.ERROR,
}


@ffi.def_extern()
def _qembed_py_log(level, line, user):  # called by the library, any thread (CFFI takes the GIL)
    try:
        _log.log(_LEVELS.get(level, logging.INFO), "%s", ffi.string(line).decode("utf-8", "replace"))
    except Exception:  # an exception cannot travel back into C; a lost log line is the lesser harm
        pass


def library_version() -> str:
    """The run-time version of libqembed ("0.1.0")."""
    return ffi.string(lib.qembed_version()).decode()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_BATCH_INDEX = re.compile(r"^input (\d+)")


class _ContextPool:
    """At most `limit` qembed_ctx objects, created on demand and reused."""

    def __init__(self, model, n_threads: int, max_batch_tokens: int, limit: int):
        self._model = model
        self._n_threads = n_threads
        self._max_batch_tokens = max_batch_tokens
        self._free: List[Any] = []
        self._all: List[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit

    def _create(self):
        p = lib.qembed_ctx_default_params()
        p.n_threads = self._n_threads
        p.max_batch_tokens = self._max_batch_tokens
        out = ffi.new("qembed_ctx **")
        err = ffi.new("qembed_error *")
        check(lib.qembed_ctx_create(self._model, ffi.addressof(p), out, err), err)
        return out[0]

    @contextmanager
    def context(self) -> Iterator[Any]:
        self._slots.acquire()
        try:
            with self._lock:
                ctx = self._free.pop() if self._free else None
            if ctx is None:
                ctx = self._create()
                with self._lock:
                    self._all.append(ctx)
            try:
                yield ctx
            finally:
                with self._lock:
                    self._free.append(ctx)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            for ctx in self._all:
                lib.qembed_ctx_free(ctx)
            self._all.clear()
            self._free.clear()


class _Progress:
    """A one-line progress count on stderr (no dependency for one line)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self._draw()

    def _draw(self) -> None:
        self.stream.write("\rEncoding: %d/%d texts" % (self.done, self.total))
        self.stream.flush()

    def update(self, n: int) -> None:
        self.done += n
        self._draw()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class Model:
    """A Qwen3-Embedding model loaded by libqembed.

    Args:
        model_name_or_path: a Hugging Face model directory, a split directory
            (`qembed split`), or a repo id ("Qwen/Qwen3-Embedding-0.6B")
            resolved in the local Hugging Face cache (nothing is downloaded).
            a .gguf file (or a folder holding one). Whatever
            `qembed_model_load` accepts; anything else (a truncated GGUF, a
            K-quant GGUF) is reported by the library as a `qembed.ModelError`.
        compute_units: "ALL", "CPU_AND_GPU", "CPU_AND_NE" or "CPU_ONLY"
            (any case), as the CLI's --compute-units.
        threads: worker threads per context; None uses every core.
        max_batch_tokens: tokens per forward pass; activation memory is planned
            for it.
        max_contexts: how many calls may run inference at once (one context
            each); None: cores // threads, at least 1.
        prompts: overrides the prompts read from the model's
            config_sentence_transformers.json.
        default_prompt_name: the prompt used when encode() is given none
            (default: the config's default_prompt_name, usually None).
        truncate: False (default, qembed's rule): an input longer than
            max_seq_length tokens is a ValueError naming it. True: keep its
            first max_seq_length - 1 tokens and <|endoftext|>, as
            sentence-transformers (its tokenizer truncates) does. Settable
            later as the attribute `truncate`.

    Raises:
        ValueError: a bad argument (unknown compute units, negative threads).
        qembed.ModelError: the model cannot be read.
        qembed.PlacementError: no device can hold it.

    The model is freed by close() (or leaving a `with` block, or garbage
    collection); do not close it while another thread is using it.
    """

    def __init__(self, model_name_or_path: Union[str, "os.PathLike[str]"], compute_units: str = "ALL",
                 threads: Optional[int] = None, max_batch_tokens: int = 16384, *,
                 max_contexts: Optional[int] = None, prompts: Optional[Dict[str, str]] = None,
                 default_prompt_name: Optional[str] = None, truncate: bool = False):
        self._handle = None
        self._pool: Optional[_ContextPool] = None
        if not isinstance(compute_units, str):
            raise TypeError("compute_units must be a str, not %s" % type(compute_units).__name__)
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise ValueError("threads must be None or an int >= 0, not %r" % (threads,))
        if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be a positive int, not %r" % (max_batch_tokens,))
        if max_contexts is not None and (not isinstance(max_contexts, int) or max_contexts < 1):
            raise ValueError("max_contexts must be None or an int >= 1, not %r" % (max_contexts,))
        err = ffi.new("qembed_error *")
        units = ffi.new("qembed_compute_units *")
        check(lib.qembed_compute_units_parse(compute_units.encode(), units, err), err)
        p = lib.qembed_model_default_params()
        p.compute_units = units[0]
        p.n_threads = threads or 0
        p.max_batch_tokens = max_batch_tokens
        p.log_fn = lib._qembed_py_log
        p.log_level = lib.QEMBED_LOG_INFO
        out = ffi.new("qembed_model **")
        check(lib.qembed_model_load(os.fsencode(model_name_or_path), ffi.addressof(p), out, err), err)
        self._handle = out[0]
        self.truncate: bool = bool(truncate)

        raw = ffi.new("qembed_model_info *")
        lib.qembed_model_get_info(self._handle, raw)
        self._threads = threads or _cores()
        self._info: Dict[str, Any] = {
            "name": ffi.string(raw.name).decode("utf-8", "replace"),
            "path": ffi.string(raw.resolved_path).decode("utf-8", "replace"),
            "architecture": ffi.string(raw.architecture).decode(),
            "synthetic": bool(raw.synthetic),
            "dtype": ffi.string(raw.dtype).decode(),
            "hidden_size": raw.hidden_size,
            "n_layers": raw.n_layers,
            "n_heads": raw.n_heads,
            "n_kv_heads": raw.n_kv_heads,
            "head_dim": raw.head_dim,
            "intermediate_size": raw.intermediate_size,
            "vocab_size": raw.vocab_size,
            "max_position_embeddings": raw.max_position_embeddings,
            "max_tokens": int(raw.max_tokens),
            "n_params": int(raw.n_params),
            "weights_bytes": int(raw.weights_bytes),
            "placement": ffi.string(lib.qembed_model_placement(self._handle)).decode("utf-8", "replace"),
            "compute_units": ffi.string(lib.qembed_compute_units_name(units[0])).decode(),
            "threads": self._threads,
            "max_batch_tokens": max_batch_tokens,
            "version": library_version(),
        }
        self._hidden = raw.hidden_size
        limit = max_contexts or max(1, _cores() // self._threads)
        self._pool = _ContextPool(self._handle, threads or 0, max_batch_tokens, limit)
        self._info["max_contexts"] = limit

        st = self._read_json("config_sentence_transformers.json")
        self.prompts: Dict[str, str] = dict(prompts if prompts is not None else st.get("prompts") or {})
        self.default_prompt_name: Optional[str] = (default_prompt_name if default_prompt_name is not None
                                                  else st.get("default_prompt_name"))
        self.similarity_fn_name: str = st.get("similarity_fn_name") or "cosine"
        modules = self._read_json("modules.json", default=None)
        # sentence-transformers runs the model's modules (for Qwen3-Embedding:
        # Transformer, Pooling, Normalize) and then, when asked, normalises
        # again. Without modules.json, qembed's own pipeline (normalised) holds.
        self._st_normalizes = modules is None or any(
            str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the contexts and the model. Idempotent."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._handle is not None:
            lib.qembed_model_free(self._handle)
            self._handle = None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return "qembed.Model(%r, dims=%d)" % (self._info.get("name"), self._hidden)

    def _live(self):
        if self._handle is None or self._pool is None:
            raise ValueError("the model is closed")
        return self._handle

    def _read_json(self, name: str, default: Any = {}) -> Any:
        f = Path(self._info["path"]) / name
        try:
            with open(f, encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as e:
            raise InputError("%s: %s" % (f, e)) from None

    # ---- properties ----

    @property
    def info(self) -> Dict[str, Any]:
        """What `qembed info` prints: model name and resolved path,
        architecture, synthetic or not, dtype, shapes, max input tokens,
        parameters, weight bytes, the placement table (one line per segment),
        and the effective compute units, threads, max_batch_tokens; plus the
        library version and max_contexts."""
        return dict(self._info)

    def get_sentence_embedding_dimension(self) -> int:
        """The full vector size (the hidden size), as sentence-transformers."""
        return self._hidden

    @property
    def max_seq_length(self) -> int:
        """Most tokens per input, counting the appended <|endoftext|>."""
        return self._info["max_tokens"]

    # ---- encoding ----

    def _resolve_prompt(self, prompt_name: Optional[str], prompt: Optional[str]) -> Optional[str]:
        # As SentenceTransformer.encode: an explicit prompt wins over
        # prompt_name (with a warning), an unknown name is a ValueError, and
        # with neither the default prompt name applies. The prompt string is
        # prepended to each text verbatim; for Qwen3-Embedding the "query"
        # prompt is "Instruct: {task}\nQuery:", so the result is exactly
        # qembed's instruction format.
        if prompt is None:
            if prompt_name is not None:
                if prompt_name not in self.prompts:
                    raise ValueError("Prompt name '%s' not found in the configured prompts dictionary "
                                     "with keys %r." % (prompt_name, list(self.prompts.keys())))
                prompt = self.prompts[prompt_name]
            elif self.default_prompt_name is not None:
                prompt = self.prompts.get(self.default_prompt_name)
        elif prompt_name is not None:
            _log.warning("Encode with either a `prompt`, a `prompt_name`, or neither, but not both. "
                         "Ignoring the `prompt_name` in favor of `prompt`.")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError("prompt must be a str, not %s" % type(prompt).__name__)
        return prompt

    @staticmethod
    def _texts(texts: Any) -> List[str]:
        if isinstance(texts, (bytes, bytearray)):
            raise TypeError("texts must be a str or a sequence of str, not bytes")
        try:
            items = list(texts)
        except TypeError:
            raise TypeError("texts must be a str or a sequence of str, not %s"
                            % type(texts).__name__) from None
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError("input %d is a %s, not a str" % (i, type(t).__name__))
        return items

    @staticmethod
    def _utf8(items: List[str], prompt: Optional[str]) -> List[bytes]:
        out = []
        for i, t in enumerate(items):
            # The library's rule, kept with a prompt too: an empty text is an
            # error, not the prompt's vector.
            if not t:
                raise InputError("input %d: the text is empty" % i, lib.QEMBED_ERR_EMPTY_INPUT,
                                 "empty input")
            try:
                out.append((prompt + t if prompt else t).encode("utf-8"))
            except UnicodeEncodeError as e:
                raise InputError("input %d is not valid UTF-8 (%s)" % (i, e.reason),
                                 lib.QEMBED_ERR_INVALID_UTF8, "invalid UTF-8") from None
        return out

    def _dims(self, truncate_dim: Optional[int]) -> int:
        if truncate_dim is None:
            return self._hidden
        lo = min(32, self._hidden)
        if not isinstance(truncate_dim, int) or isinstance(truncate_dim, bool) \
                or not lo <= truncate_dim <= self._hidden:
            raise ValueError("truncate_dim %r is out of range: expected %d..%d (the model's hidden size)"
                             % (truncate_dim, lo, self._hidden))
        return truncate_dim

    def encode(self, texts: Union[str, Sequence[str]], prompt_name: Optional[str] = None,
               prompt: Optional[str] = None, batch_size: int = 32, normalize_embeddings: bool = True,
               truncate_dim: Optional[int] = None, show_progress_bar: Optional[bool] = None,
               convert_to_numpy: bool = True) -> Union[np.ndarray, List[np.ndarray]]:
        """Embeds texts, as SentenceTransformer.encode.

        Args:
            texts: one str (gives one vector, shape (dims,)) or a sequence of
                str (gives a matrix, shape (len(texts), dims), row i for text i).
            prompt_name: a key of the model's prompts (config_sentence_transformers.json;
                Qwen3-Embedding has "query" and "document"); its text is prepended.
            prompt: a string prepended to every text (wins over prompt_name).
            batch_size: texts per library call (each call is packed, not
                padded, and split into forward passes of max_batch_tokens).
            normalize_embeddings: L2-normalise the (truncated) vectors. A model
                whose modules.json has a Normalize module (Qwen3-Embedding) is
                normalised by that module anyway, as in sentence-transformers.
            truncate_dim: Matryoshka: keep the first N values (32..hidden).
            show_progress_bar: None: on when stderr is a terminal.
            convert_to_numpy: False gives a list of 1-D arrays (views of one
                matrix) instead of the matrix.

        Returns:
            float32, C-contiguous numpy arrays written by the library in place.

        Raises:
            TypeError: texts is not a str or a sequence of str.
            ValueError (qembed.InputError): an empty text, a text too long for
                max_seq_length, an unknown prompt_name, a bad batch_size or
                truncate_dim; the message names the input's index.
            qembed.Error: the model failed (for example a non-finite vector).
        """
        self._live()
        single = isinstance(texts, str)
        items = [texts] if single else self._texts(texts)
        prompt = self._resolve_prompt(prompt_name, prompt)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError("batch_size must be a positive int, not %r" % (batch_size,))
        dims = self._dims(truncate_dim)
        encoded = self._utf8(items, prompt)

        opts = lib.qembed_embed_default_options()
        opts.truncate = 1 if self.truncate else 0
        # sentence-transformers order: modules (Normalize) -> truncate -> normalise.
        slice_after = not normalize_embeddings and self._st_normalizes and dims != self._hidden
        opts.normalize = 1 if (normalize_embeddings or self._st_normalizes) else 0
        opts.dims = 0 if slice_after else dims
        lib_dims = self._hidden if slice_after else dims
        out = np.empty((len(encoded), lib_dims), dtype=np.float32)

        show = sys.stderr.isatty() if show_progress_bar is None else bool(show_progress_bar)
        bar = _Progress(len(encoded)) if show and encoded else None
        err = ffi.new("qembed_error *")
        try:
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start:start + batch_size]
                bufs = [ffi.from_buffer(b) for b in chunk]  # views of the bytes: no copy
                ptrs = ffi.new("const char *[]", bufs)
                lens = ffi.new("size_t[]", [len(b) for b in chunk])
                dst = ffi.from_buffer("float[]", out[start:start + len(chunk)], require_writable=True)
                with self._pool.context() as ctx:
                    status = lib.qembed_ctx_embed(ctx, ptrs, lens, len(chunk), ffi.addressof(opts),
                                                  dst, err)
                # The library numbers inputs within its call; say which of the caller's.
                check(status, err, lambda m, s=start: _BATCH_INDEX.sub(
                    lambda g: "input %d" % (int(g.group(1)) + s), m, count=1))
                if bar:
                    bar.update(len(chunk))
        finally:
            if bar:
                bar.close()
        if slice_after:
            out = np.ascontiguousarray(out[:, :dims])  # the one copy this mode needs
        if single:
            return out[0]
        return out if convert_to_numpy else list(out)

    def tokenize(self, texts: Union[str, Sequence[str]]) -> Dict[str, List[List[int]]]:
        """The ids the model sees for each text (with the appended
        <|endoftext|>, no prompt, truncated when `truncate` is set):
        {"input_ids": [[...], ...]}, one list per text, unpadded (qembed packs
        batches, so there is no attention mask).
        """
        handle = self._live()
        items = [texts] if isinstance(texts, str) else self._texts(texts)
        encoded = self._utf8(items, None)
        opts = lib.qembed_embed_default_options()
        opts.truncate = 1 if self.truncate else 0
        ids = ffi.new("int32_t **")
        n = ffi.new("size_t *")
        err = ffi.new("qembed_error *")
        result = []
        for i, b in enumerate(encoded):
            status = lib.qembed_model_tokenize(handle, b, len(b), ffi.addressof(opts), ids, n, err)
            check(status, err, lambda m, s=i: _BATCH_INDEX.sub(lambda g: "input %d" % s, m, count=1))
            try:
                result.append(list(ffi.unpack(ids[0], n[0])))
            finally:
                lib.qembed_free(ids[0])
        return {"input_ids": result}

    def similarity(self, a: Any, b: Any) -> np.ndarray:
        """Pairwise scores, shape (len(a), len(b)), float32, with the model's
        similarity_fn_name (config_sentence_transformers.json; "cosine" by
        default; "dot", "euclidean" and "manhattan" as sentence-transformers,
        the distances negated). 1-D inputs count as one vector."""
        x = np.atleast_2d(np.asarray(a, dtype=np.float32))
        y = np.atleast_2d(np.asarray(b, dtype=np.float32))
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
            raise ValueError("similarity needs vectors of the same size: got shapes %s and %s"
                             % (np.shape(a), np.shape(b)))
        fn = self.similarity_fn_name
        if fn in ("cosine", "cos_sim"):
            nx = np.linalg.norm(x, axis=1, keepdims=True)
            ny = np.linalg.norm(y, axis=1, keepdims=True)
            return (x / np.maximum(nx, 1e-12)) @ (y / np.maximum(ny, 1e-12)).T
        if fn in ("dot", "dot_score"):
            return x @ y.T
        if fn == "euclidean":
            return -np.sqrt(np.maximum(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1), 0))
        if fn == "manhattan":
            return -np.abs(x[:, None, :] - y[None, :, :]).sum(-1)
        raise ValueError("unknown similarity_fn_name %r" % (fn,))

    # ---- LangChain Embeddings interface (duck-typed; no LangChain import) ----

    def _prompt_name_if(self, name: str) -> Optional[str]:
        return name if name in self.prompts else None

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        """LangChain: one vector (list of float) per document, with the
        model's "document" prompt when it has one (empty for Qwen3-Embedding)."""
        if not texts:
            return []
        return self.encode(list(texts), prompt_name=self._prompt_name_if("document")).tolist()

    def embed_query(self, text: str) -> List[float]:
        """LangChain: the query's vector, with the model's "query" prompt
        (Qwen3-Embedding: the web-search instruction) when it has one."""
        return self.encode(text, prompt_name=self._prompt_name_if("query")).tolist()

    async def aembed_documents(self, texts: List[str]) -> List[List[float]]:
        """embed_documents in a worker thread (the GIL is released inside)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> List[float]:
        """embed_query in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)
