#!/bin/sh
# one training process, pinned to core 1, one thread
cd /work/wt-scA
exec taskset -c 1 env MKL_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python search/tune.py "$@"
