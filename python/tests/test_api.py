"""qembed.Model through Python against the CLI (bit for bit) and the golden
vectors; shapes, batch sizes, prompts, dims, normalisation, progress bar,
errors, info, similarity, the LangChain methods."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import qembed

QUERY_TASK = "Given a web search query, retrieve relevant passages that answer the query"


def cli_embed(cli, model_dir, texts, *args):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "v.npy")
        subprocess.run([cli, "embed", "-m", model_dir, "-q", "-o", out, *args, "--", *texts],
                       check=True, timeout=120)
        return np.load(out)


def test_golden_ids_and_vectors(model, golden):
    texts = [c["text"] for c in golden["cases"]]
    ids = model.tokenize(texts)["input_ids"]
    assert ids == [c["token_ids"] for c in golden["cases"]]
    v = model.encode(texts)
    ref = np.array([c["embedding"] for c in golden["cases"]], dtype=np.float64)
    cos = (v.astype(np.float64) * ref).sum(1) / np.linalg.norm(ref, axis=1)
    assert v.shape == (len(texts), golden["hidden_size"])
    assert cos.min() >= 0.9999, cos


def test_equals_cli_bit_for_bit(model, model_dir, golden, cli):
    texts = [c["text"] for c in golden["cases"]]
    ref = cli_embed(cli, model_dir, texts)
    assert ref.dtype == np.float32
    v = model.encode(texts)
    assert v.dtype == np.float32 and v.flags["C_CONTIGUOUS"]
    assert np.array_equal(v, ref)


def test_many_texts_equal_cli_with_the_same_batches(model, model_dir, cli):
    # The CLI embeds 256 texts per library call; with the same batches Python
    # gives the same bits. Other batch sizes pack other forward passes: the
    # same vectors within float rounding (the library's contract), not bit
    # for bit.
    texts = ["text number %d about %s" % (i, "word " * (i % 17)) for i in range(600)]
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "v.npy")
        with open(src, "w") as f:
            f.writelines(json.dumps(t) + "\n" for t in texts)
        subprocess.run([cli, "embed", "-m", model_dir, "-q", "--no-progress", "-i", src, "-o", out],
                       check=True, timeout=120)
        ref = np.load(out)
    assert np.array_equal(model.encode(texts, batch_size=256), ref)
    for bs in (1, 7, 32, 1000):
        v = model.encode(texts[:100] if bs == 1 else texts, batch_size=bs)
        cos = (v * ref[:len(v)]).sum(1)
        assert cos.min() >= 0.99999, bs


def test_query_prompt_equals_cli_instruct_and_golden(model, model_dir, golden, cli):
    q = cli_embed(cli, model_dir, ["Explain gravity", "What is the capital of China?"],
                  "--instruct", QUERY_TASK)
    v = model.encode(["Explain gravity", "What is the capital of China?"], prompt_name="query")
    assert np.array_equal(v, q)
    gold = [c for c in golden["cases"] if c["text"].endswith("Query:Explain gravity")][0]
    assert np.array_equal(model.encode("Explain gravity", prompt_name="query"),
                          model.encode(gold["text"]))
    # the prompt is prepended verbatim, as sentence-transformers does
    assert np.array_equal(model.encode("gravity", prompt="Topic: "), model.encode("Topic: gravity"))
    assert np.array_equal(model.encode("gravity", prompt_name="document"), model.encode("gravity"))


def test_dims_equal_cli(model, model_dir, golden, cli):
    texts = [c["text"] for c in golden["cases"]]
    ref = cli_embed(cli, model_dir, texts, "--dims", "32")
    v = model.encode(texts, truncate_dim=32)
    assert v.shape == (len(texts), 32) and np.array_equal(v, ref)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)


def test_normalize_false_follows_sentence_transformers(model):
    # Qwen3-Embedding's modules.json ends in Normalize: sentence-transformers
    # normalises in the module, then truncates, and only re-normalises when
    # normalize_embeddings is set.
    full = model.encode(["one text", "another"], normalize_embeddings=False)
    assert np.array_equal(full, model.encode(["one text", "another"]))
    cut = model.encode(["one text", "another"], normalize_embeddings=False, truncate_dim=40)
    assert cut.flags["C_CONTIGUOUS"] and cut.shape == (2, 40)
    assert np.array_equal(cut, full[:, :40])
    assert (np.linalg.norm(cut, axis=1) < 1).all()


def test_shapes_and_types(model):
    assert model.encode("hi").shape == (64,)
    assert model.encode(["hi"]).shape == (1, 64)
    assert model.encode(("a", "b")).shape == (2, 64)
    assert model.encode([]).shape == (0, 64)
    rows = model.encode(["a", "b"], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and rows[0].shape == (64,)
    assert model.get_sentence_embedding_dimension() == 64
    assert model.max_seq_length == 8192


def test_prompt_rules(model_dir):
    m = qembed.Model(model_dir, default_prompt_name="query")
    try:
        assert np.array_equal(m.encode("x"), m.encode("x", prompt_name="query"))
        assert np.array_equal(m.encode("x", prompt="P: ", prompt_name="query"), m.encode("P: x", prompt=""))
        with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
            m.encode("x", prompt_name="nope")
    finally:
        m.close()


def test_errors(model, model_dir):
    with pytest.raises(ValueError, match="input 40: the text is empty"):
        model.encode(["a"] * 40 + [""], batch_size=16)
    with pytest.raises(qembed.InputError, match=r"input 5 has \d+ tokens"):
        model.encode(["a"] * 5 + ["word " * 9000], batch_size=4)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        model.encode("bad \ud800 surrogate")
    with pytest.raises(TypeError, match="input 1 is a int"):
        model.encode(["a", 3])
    with pytest.raises(TypeError):
        model.encode(b"bytes")
    with pytest.raises(ValueError, match="truncate_dim 16 is out of range"):
        model.encode("a", truncate_dim=16)
    with pytest.raises(ValueError, match="batch_size"):
        model.encode("a", batch_size=0)
    with pytest.raises(ValueError, match="compute units: unknown value 'TPU'"):
        qembed.Model(model_dir, compute_units="TPU")
    with pytest.raises(qembed.ModelError) as e:
        qembed.Model(model_dir + "/no-such-dir")
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, qembed.Error)
    assert "no-such-dir" in str(e.value) and e.value.code != 0
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "model.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00")
        with pytest.raises(qembed.Error, match="model.gguf"):
            qembed.Model(bad)
    m = qembed.Model(model_dir)
    m.close()
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.encode("a")


def test_placement_error_is_a_qembed_error(model_dir):
    # No device has room for the model: CPU_ONLY with no CPU budget cannot be
    # asked for through Python, so check the mapping on what the library
    # reports for a bad max_batch_tokens instead and for the class tree.
    assert issubclass(qembed.PlacementError, qembed.Error)
    assert issubclass(qembed.Error, RuntimeError)
    with pytest.raises(ValueError, match="max_batch_tokens .* too large"):
        qembed.Model(model_dir, max_batch_tokens=1 << 25)


def test_progress_bar_only_on_a_terminal(model_dir):
    code = ("import qembed; m = qembed.Model(%r); m.encode(['a', 'b', 'c'], batch_size=1%s)")
    for extra, want in (("", False), (", show_progress_bar=True", True)):
        p = subprocess.run([sys.executable, "-c", code % (model_dir, extra)], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert ("Encoding: 3/3 texts" in p.stderr) == want, p.stderr


def test_info(model):
    i = model.info
    for k in ("name", "path", "architecture", "synthetic", "dtype", "hidden_size", "n_layers",
              "n_heads", "n_kv_heads", "head_dim", "intermediate_size", "vocab_size",
              "max_position_embeddings", "max_tokens", "n_params", "weights_bytes", "placement",
              "compute_units", "threads", "max_batch_tokens", "version"):
        assert k in i, k
    assert i["hidden_size"] == 64 and i["n_layers"] == 2 and i["synthetic"] is True
    assert "cpu" in i["placement"] and "2 layers" in i["placement"]
    assert i["compute_units"] == "ALL" and i["version"] == qembed.library_version()


def test_similarity(model):
    a = model.encode(["the cat sat", "a dog ran"])
    s = model.similarity(a, a)
    assert s.shape == (2, 2) and np.allclose(np.diag(s), 1, atol=1e-6)
    assert np.allclose(s, a @ a.T, atol=1e-6)
    assert model.similarity(a[0], a).shape == (1, 2)
    with pytest.raises(ValueError):
        model.similarity(a, a[:, :32])


def test_langchain_methods(model):
    q = model.embed_query("What is gravity?")
    assert isinstance(q, list) and len(q) == 64 and isinstance(q[0], float)
    assert q == model.encode("What is gravity?", prompt_name="query").tolist()
    d = model.embed_documents(["Gravity pulls.", "Cats purr."])
    assert d == model.encode(["Gravity pulls.", "Cats purr."]).tolist()
    assert model.embed_documents([]) == []
    import asyncio
    assert asyncio.run(model.aembed_query("What is gravity?")) == q


def test_tokenize(model):
    assert model.tokenize("Hello world") == {"input_ids": [[9707, 1879, 151643]]}
    with pytest.raises(ValueError, match="input 1: the text is empty"):
        model.tokenize(["a", ""])


def test_truncate_like_sentence_transformers_and_the_cli(model_dir, cli):
    long = "word " * 9000  # more than the 8192-token default limit
    m = qembed.Model(model_dir, truncate=True)
    try:
        ids = m.tokenize(long)["input_ids"][0]
        assert len(ids) == m.max_seq_length and ids[-1] == 151643
        v = m.encode(["short", long])
        assert np.array_equal(v, cli_embed(cli, model_dir, ["short", long], "--truncate"))
        m.truncate = False
        with pytest.raises(ValueError, match="input 1 has"):
            m.encode(["short", long])
    finally:
        m.close()
