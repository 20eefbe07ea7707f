#!/usr/bin/python3
"""Split of a qembed CPU profile: where the forward pass's time goes.

Buckets perf samples (`perf script -F ip,sym` of a `perf record -g` run, on
stdin) by leaf symbol, and by its caller where a leaf is shared (the bf16
conversion inside attention or before a product; the norm inside the q/k
step or not); prints each bucket's share of the forward pass's samples and
the sample count (at a fixed sampling rate, the count is CPU time, so two
runs of the same workload compare bucket by bucket). Load, packing, the
bench's peak measurement, the tokenizer and page faults are counted apart.

  perf record -F 2000 -g -o run.data qembed bench -m MODEL --threads 2 \
      --no-cold --query-runs 1 --batch-texts 64 --docs 0 --long-tokens 0
  perf script -i run.data -F ip,sym | python3 bench/perf_split.py
"""
import sys, re, collections
B = collections.Counter()
PRODUCTS = {"k_2x2", "k_1x4", "k_1x2", "block", "product_task", "tile_out", "tile_dst"}
ATTN = {"qe_attn_amx_task", "pack_k", "pack_v", "qk_tiles", "pv_tiles", "softmax_row", "pv_row_visible",
        "attn_task", "qe_attention"}
POOL = {"worker_main", "qe_threadpool_run", "run_tasks", "sched_yield", "__sched_yield", "pthread_cond_wait",
        "pthread_mutex_lock", "pthread_mutex_unlock", "pthread_cond_broadcast", "__futex_abstimed_wait_common",
        "futex_wait", "__lll_lock_wait"}
SCHED_K = re.compile(r"sched|schedule|yield|futex|switch|syscall|x64_sys_call|irqentry_exit|_raw_spin|rcu|pick_|"
                     r"update_|enqueue|dequeue|psi_|hrtick|entry_SYSCALL|native_|__x64")
OUTSIDE = re.compile(r"pack_tile|pack_panel|qe_amx_pack|pack_task|read_avx2|^loop_|peak|qe_tok|js_|qe_js|"
                     r"clear_page|page_fault|folio|get_user_pages|memcg|alloc|lruvec|do_anonymous|handle_mm|"
                     r"pte|mas_|lookup|qe_q8_check|qe_isa_check|scalar_task|check_shape|qe_tensor|sincos|"
                     r"rope_table|bf16_to_f32|f16_to_f32|qe_op_embed|free_unref|unmap|copy_mc|madvise|"
                     r"__memcmp|do_lookup|strlen|_dl_|get_mem_cgroup|get_page_from|charge")
def bucket(leaf, parent):
    if leaf in PRODUCTS: return "products (AMX tiles, stores)"
    if leaf == "silu_mul16": return "products: SwiGLU epilogue"
    if leaf == "qe_mm_to_bf16_rows":
        return "attention" if parent and "attn" in parent else "conversions to bf16 (product inputs)"
    if leaf in ATTN: return "attention"
    if leaf in ("norm_rope_heads_avx512", "qe_op_rope_head", "qk_norm_rope_task", "qe_op_rmsnorm_rope_heads_isa"):
        return "q/k norm + RoPE"
    if leaf in ("rmsnorm_avx512", "qe_op_rmsnorm_rows", "qe_op_rmsnorm_rows_isa"):
        return "q/k norm + RoPE" if parent and "qk_norm" in parent else "norms (+ residual add)"
    if leaf in ("add_rmsnorm_avx512", "qe_op_add_rmsnorm_rows_isa", "add_rmsnorm_task", "rmsnorm_task"):
        return "norms (+ residual add)"
    if leaf == "qe_op_add": return "residual adds"
    if leaf in POOL: return "pool hand-offs and waits"
    if leaf.startswith("__mem") and "cmp" not in leaf: return "memcpy/memset"
    if OUTSIDE.search(leaf): return "OUTSIDE (load, packing, peak, tokenizer, page faults)"
    if SCHED_K.search(leaf): return "pool hand-offs and waits"
    return "other: " + leaf
frames = []
def flush():
    if not frames: return
    leaf = frames[0]; parent = frames[1] if len(frames) > 1 else None
    B[bucket(leaf, parent)] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); frames = []; continue
    if line.startswith((" ", "\t")):
        m = re.match(r"\s+[0-9a-f]+\s+(\S+)", line)
        if m: frames.append(re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)))
flush()
tot = sum(B.values()); inside = tot - B["OUTSIDE (load, packing, peak, tokenizer, page faults)"]
other = sum(v for k, v in B.items() if k.startswith("other: "))
print(f"samples {tot}, of the forward pass {inside}")
for k, v in sorted(B.items(), key=lambda kv: -kv[1]):
    if k.startswith("other: ") or k.startswith("OUTSIDE"): continue
    print(f"  {k:40s} {100.0*v/inside:5.1f}%  {v:7d} samples")
print(f"  {'other':40s} {100.0*other/inside:5.1f}%  ({', '.join(k[7:] for k,v in B.most_common() if k.startswith('other: ') and v*1000>inside)})")
print(f"  (outside the forward pass: {100.0*(tot-inside)/tot:.1f}% of all samples)")
