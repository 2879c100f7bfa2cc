#!/usr/bin/env bash
# Start (or continue) one background reproduction run:
#   scripts/run_background.sh NAME EXPERIMENT [--set KEY=VALUE ...]
# Results, checkpoints and the log go to ~/.cache/sklearn-cnn-runs/NAME{/,.log}; one torch
# thread (two such jobs share the 2 cores; SKLEARN_CNN_THREADS=2 gives one job both, e.g. a
# run that must finish inside a session). SKLEARN_CNN_CODE names the checkout to run
# (default: this one; a separate worktree keeps edits of the repo out of a running job).
# SKLEARN_CNN_SHARED defaults to the shared/ folder beside the checkout.
# Same command again continues it: the checkpoints are in its --out folder.
set -u
name=$1; shift
here=$(cd "$(dirname "$0")/.." && pwd)
code=${SKLEARN_CNN_CODE:-$here}
shared=${SKLEARN_CNN_SHARED:-$(cd "$here/../shared" 2>/dev/null && pwd)}
out=$HOME/.cache/sklearn-cnn-runs/$name
mkdir -p "$out"
# One log per command: two jobs may share an --out folder (e.g. layer_probes' two runs).
tag=$(printf '%s' "$*" | tr -c 'A-Za-z0-9_=.-' '_' | cut -c1-80)
log="$out.$tag.log"
cd "$code"
threads=${SKLEARN_CNN_THREADS:-1}
# glibc keeps freed blocks for the next step instead of unmapping them: a third of the
# jobs' CPU time went to page faults (benchmarks/bench_allocator.py).
GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296} \
OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads MPLBACKEND=Agg SKLEARN_CNN_SHARED=$shared \
  PYTHONUNBUFFERED=1 PYTHONPATH="$code" nohup python -m sklearn_cnn.cli reproduce "$@" --out "$out" \
  >> "$log" 2>&1 &
echo "started $name (pid $!), log $log"
