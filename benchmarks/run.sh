#!/usr/bin/env bash
# Reproduces docs/BENCHMARKS.md: the dispatch benchmark (unpinned and pinned to CPU 0), the
# C pipe ping-pong floor it is compared with, and the key pool / ledger benchmark. Needs gcc and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product chimera >/dev/null
gcc -O2 -o /tmp/chimera-pingpong benchmarks/pingpong.c
echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"
for run in 1 2 3; do
  echo "dispatch unpinned:  $(.build/release/chimera bench dispatch --json)"
  echo "dispatch on CPU 0:  $(taskset -c 0 .build/release/chimera bench dispatch --json)"
  echo "C pipe floor CPU 0: $(taskset -c 0 /tmp/chimera-pingpong 100000)"
  echo "keys:               $(.build/release/chimera bench keys --json)"
done
