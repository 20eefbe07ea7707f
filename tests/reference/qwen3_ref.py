#!/usr/bin/python3
"""An independent float32 numpy implementation of Qwen3-Embedding, for tests.

It shares no code with qembed: it reads config.json and the safetensors files
directly (bf16 -> f32 by uint16 << 16) and follows the Hugging Face
transformers Qwen3 modelling code step by step:

  embed_tokens -> per layer [RMSNorm, q/k/v, per-head q_norm/k_norm, RoPE
  (rotate-half, inv_freq computed in float32 as HF does), causal GQA softmax
  attention (scale 1/sqrt(head_dim)), o_proj, residual, RMSNorm, SwiGLU MLP,
  residual] -> final RMSNorm -> last-token pooling -> L2 normalisation
  (after slicing to `dims` for Matryoshka).

Usage as a program:
  qwen3_ref.py MODEL_DIR IDS.jsonl [--dims N]   -> one JSON vector per line
Each line of IDS.jsonl is a JSON array of token ids (as `qembed tokenize`
prints them); each is embedded alone (no batching: the reference is the
plainest possible form).
"""
import json
import os
import sys

import numpy as np


def _load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        raw = data[a:b]
        shape = tuple(meta["shape"])
        out[name] = (meta["dtype"], raw, shape)
    return out


def _to_f32(entry):
    dtype, raw, shape = entry
    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(shape)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    raise ValueError("unsupported dtype " + dtype)


class Qwen3Ref:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.H = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.nh = c["num_attention_heads"]
        self.nkv = c["num_key_value_heads"]
        self.hd = c.get("head_dim") or self.H // self.nh
        self.eps = np.float32(c["rms_norm_eps"])
        self.theta = c["rope_theta"]
        self.t = {}
        idx = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        for fn in files:
            self.t.update(_load_safetensors(os.path.join(model_dir, fn)))
        self._cache = {}

    def w(self, name):
        if name not in self._cache:
            key = name if name in self.t else "model." + name
            self._cache[name] = _to_f32(self.t[key])
        return self._cache[name]

    def drop(self, prefix):
        for k in [k for k in self._cache if k.startswith(prefix)]:
            del self._cache[k]

    def rmsnorm(self, x, w):
        x = x.astype(np.float32)
        var = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
        return (w * (x / np.sqrt(var + self.eps))).astype(np.float32)

    def rope(self, n):
        d = self.hd
        # HF: inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), in float32
        e = np.arange(0, d, 2, dtype=np.float32) / np.float32(d)
        inv = (np.float32(1.0) / np.power(np.float32(self.theta), e, dtype=np.float32)).astype(np.float32)
        ang = np.arange(n, dtype=np.float32)[:, None] * inv[None, :]
        emb = np.concatenate([ang, ang], axis=-1)
        return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)

    def _embed_rows(self, ids):
        name = "embed_tokens.weight" if "embed_tokens.weight" in self.t else "model.embed_tokens.weight"
        dtype, raw, shape = self.t[name]
        row = {"BF16": 2, "F16": 2, "F32": 4}[dtype] * shape[1]
        return np.stack([_to_f32((dtype, raw[i * row:(i + 1) * row], (shape[1],))) for i in ids])

    def _layer(self, l, x):
        n = x.shape[0]
        p = "layers.%d." % l
        cos, sin = self.rope(n)
        g = self.nh // self.nkv
        mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), k=1)
        scale = np.float32(1.0 / np.sqrt(self.hd))
        h = self.rmsnorm(x, self.w(p + "input_layernorm.weight"))
        q = (h @ self.w(p + "self_attn.q_proj.weight").T).reshape(n, self.nh, self.hd)
        k = (h @ self.w(p + "self_attn.k_proj.weight").T).reshape(n, self.nkv, self.hd)
        v = (h @ self.w(p + "self_attn.v_proj.weight").T).reshape(n, self.nkv, self.hd)
        q = self.rmsnorm(q, self.w(p + "self_attn.q_norm.weight"))  # before RoPE, as Qwen3
        k = self.rmsnorm(k, self.w(p + "self_attn.k_norm.weight"))
        q = q * cos[:, None, :] + self.rotate_half(q) * sin[:, None, :]
        k = k * cos[:, None, :] + self.rotate_half(k) * sin[:, None, :]
        out = np.empty((n, self.nh, self.hd), dtype=np.float32)
        for hh in range(self.nh):
            kv = hh // g
            s = (q[:, hh, :] @ k[:, kv, :].T) * scale + mask
            s = s - s.max(axis=-1, keepdims=True)
            e = np.exp(s)
            pr = e / e.sum(axis=-1, keepdims=True)
            out[:, hh, :] = pr @ v[:, kv, :]
        x = x + out.reshape(n, -1) @ self.w(p + "self_attn.o_proj.weight").T
        h = self.rmsnorm(x, self.w(p + "post_attention_layernorm.weight"))
        gt = h @ self.w(p + "mlp.gate_proj.weight").T
        up = h @ self.w(p + "mlp.up_proj.weight").T
        act = (gt / (np.float32(1.0) + np.exp(-gt))) * up
        return (x + act @ self.w(p + "mlp.down_proj.weight").T).astype(np.float32)

    def hidden_many(self, seqs):
        """Final-normed last-token state (H,) of each id sequence, float32.
        Layers outermost, each layer's weights widened once and dropped after
        (the 0.6b model in f32 would otherwise hold 2.4 GB)."""
        xs = [self._embed_rows(np.asarray(s, dtype=np.int64)) for s in seqs]
        for l in range(self.L):
            xs = [self._layer(l, x) for x in xs]
            self.drop("layers.%d." % l)
        return [self.rmsnorm(x[-1], self.w("norm.weight")) for x in xs]

    def hidden(self, ids):
        return self.hidden_many([ids])[0]

    def embed_many(self, seqs, dims=None):
        out = []
        for h in self.hidden_many(seqs):
            v = h.astype(np.float64)
            if dims:
                v = v[:dims]
            out.append(v / np.linalg.norm(v))
        return out

    def embed(self, ids, dims=None):
        return self.embed_many([ids], dims)[0]


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 1
    dims = None
    if "--dims" in argv:
        dims = int(argv[argv.index("--dims") + 1])
    ref = Qwen3Ref(argv[1])
    with open(argv[2]) as f:
        seqs = [json.loads(line) for line in f if line.strip()]
    for v in ref.embed_many(seqs, dims):
        print(json.dumps([float(x) for x in v]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
