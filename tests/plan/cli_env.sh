#!/bin/sh
# `qembed info` through the binary: the PAPR_* variables and flag precedence,
# as a user of the CoreML service would set them. Usage: cli_env.sh QEMBED TINY_MODEL
set -u
Q=$1; M=$2
[ -f "$M/config.json" ] || { echo "FAIL: model $M not found"; exit 1; }
fail=0
unset QEMBED_MODEL QEMBED_COMPUTE_UNITS PAPR_COREML_COMPUTE_UNITS PAPR_ENABLE_COREML PAPR_EMBEDDING_MODEL \
      QEMBED_SIM_ACCEL_MEMORY QEMBED_THREADS QEMBED_MAX_BATCH_TOKENS QEMBED_CPU_MEMORY_LIMIT
tmp=${TMPDIR:-/tmp}/qembed-cli-env.$$
expect() { # what file pattern
  grep -q -- "$3" "$2" || { echo "FAIL: $1: no '$3' in:"; cat "$2"; fail=1; }
}
reject() {
  grep -q -- "$3" "$2" && { echo "FAIL: $1: unexpected '$3' in:"; cat "$2"; fail=1; }
  return 0
}

# PAPR_COREML_MODEL (a path) and PAPR_COREML_COMPUTE_UNITS; CPU_AND_NE warns once.
PAPR_COREML_MODEL=$M PAPR_COREML_COMPUTE_UNITS=cpu_and_ne "$Q" info -t 1 >"$tmp.out" 2>"$tmp.err" || { echo "FAIL: info exit $?"; cat "$tmp.err"; fail=1; }
expect papr-model "$tmp.out" "(PAPR_COREML_MODEL)"
expect papr-units "$tmp.out" "CPU_AND_NE .*(PAPR_COREML_COMPUTE_UNITS)"
expect ne-warning "$tmp.err" "WARN: compute units CPU_AND_NE: no neural engine"
[ "$(grep -c 'no neural engine' "$tmp.err")" = 1 ] || { echo "FAIL: the NE warning is not said exactly once"; fail=1; }
expect requesting "$tmp.err" "Requesting compute units: CPU_AND_NE"

# PAPR_ENABLE_COREML=false: CPU_ONLY; the flag still wins over everything.
PAPR_COREML_MODEL=$M PAPR_ENABLE_COREML=false "$Q" info -t 1 >"$tmp.out" 2>"$tmp.err"
expect enable-false "$tmp.out" "CPU_ONLY .*(PAPR_ENABLE_COREML=false)"
QEMBED_COMPUTE_UNITS=CPU_AND_NE PAPR_ENABLE_COREML=false "$Q" info -m "$M" -t 1 --compute-units all >"$tmp.out" 2>"$tmp.err"
expect flag-wins "$tmp.out" "ALL .*(--compute-units)"
expect flag-model "$tmp.out" "(--model)"
reject flag-wins-no-ne "$tmp.err" "neural engine"

# QEMBED_* beats PAPR_*; the simulated accelerator appears in the placement.
QEMBED_MODEL=$M PAPR_COREML_MODEL=/nonexistent QEMBED_SIM_ACCEL_MEMORY=1G QEMBED_COMPUTE_UNITS=CPU_AND_GPU \
  PAPR_COREML_COMPUTE_UNITS=CPU_ONLY "$Q" info -t 1 >"$tmp.out" 2>"$tmp.err"
expect qembed-model "$tmp.out" "(QEMBED_MODEL)"
expect qembed-units "$tmp.out" "CPU_AND_GPU .*(QEMBED_COMPUTE_UNITS)"
expect sim-placement "$tmp.out" "sim-accel (test device)"

# An invalid value is an error naming the variable and the valid values (exit 2: the model is not loaded).
QEMBED_COMPUTE_UNITS=GPU "$Q" info -m "$M" >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -ne 0 ] || { echo "FAIL: invalid QEMBED_COMPUTE_UNITS accepted"; fail=1; }
expect invalid-env "$tmp.err" "QEMBED_COMPUTE_UNITS=GPU is not valid (valid: ALL, CPU_AND_GPU, CPU_AND_NE, CPU_ONLY)"
"$Q" info -m "$M" --compute-units NE >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: invalid --compute-units: exit $rc, expected 1"; fail=1; }
expect invalid-flag "$tmp.err" "valid: ALL, CPU_AND_GPU, CPU_AND_NE, CPU_ONLY"

# Larger than every budget: the placement error with the numbers, exit 2, no crash.
"$Q" info -m "$M" --cpu-memory-limit 1M >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: too-small budget: exit $rc, expected 2"; cat "$tmp.err"; fail=1; }
expect too-big "$tmp.err" "placement impossible: placement: the model needs"
expect too-big-budget "$tmp.err" "cpu 1.00 MiB"

# qembed split through the binary: usage errors (exit 1), a missing model (exit 2), and a split
# that embeds exactly as its source does (36.78M puts layer 0 on the sim-accel today; test_split
# asserts the two-device placement with budgets computed from the planner).
"$Q" split -m "$M" --max-segments 2 >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: split without -o: exit $rc"; fail=1; }
expect split-no-o "$tmp.err" "-o DIR is required"
"$Q" split -m "$M" -o "$tmp.split" --max-segments 2 --max-segment-bytes 1G >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: split with both limits: exit $rc"; fail=1; }
"$Q" split -m "$M" -o "$tmp.split" --max-segments 0 >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: split --max-segments 0: exit $rc"; fail=1; }
"$Q" split -m "$tmp.nonexistent" -o "$tmp.split" --max-segments 2 >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: split of a missing model: exit $rc"; fail=1; }
"$Q" split -m "$M" -o "$tmp.split" --max-segments 2 >"$tmp.out" 2>"$tmp.err" || { echo "FAIL: split"; cat "$tmp.err"; fail=1; }
expect split-log "$tmp.err" "segment-01-of-02.safetensors: layers 1-1 + final norm"
[ -f "$tmp.split/manifest.json" ] && [ -f "$tmp.split/tokenizer.json" ] || { echo "FAIL: split wrote no manifest/tokenizer"; fail=1; }
"$Q" embed -q -t 1 -m "$M" "hello world" "zwei Sätze" >"$tmp.a" 2>/dev/null
"$Q" embed -t 1 -m "$tmp.split" --sim-accel-memory 36.78M "hello world" "zwei Sätze" >"$tmp.b" 2>"$tmp.err"
cmp -s "$tmp.a" "$tmp.b" || { echo "FAIL: split and unsplit vectors differ"; fail=1; }
expect split-verified "$tmp.err" "SHA-256 verified"
"$Q" split -m "$M" -o "$tmp.split" --max-segments 2 >"$tmp.out" 2>"$tmp.err"; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: split over an existing split: exit $rc"; fail=1; }
expect split-exists "$tmp.err" "already exists"
rm -rf "$tmp.split" "$tmp.a" "$tmp.b"

rm -f "$tmp.out" "$tmp.err"
[ $fail -eq 0 ] && echo "cli env: all checks passed"
exit $fail
