"""The roofline of a training step, for bench_train.py: what a step
computes and moves, and the machine's ceilings (measured here, not quoted).

A step at batch B of the V x H model (784 x 500) does five matrix products
of 2 B V H floating-point operations each (x W, h W^T, d_z W and the two
outer products of the update of W): its flops. The bytes it moves are
counted where they come from beyond a core's L2 cache:

  - blocks of rows (batch under SMALL_BATCH, the kernel's blocked path):
    W three times (passes 1 and 2 read it, pass 3 reads and writes it),
    plus the minibatch x once; h, d_z, d_h (B x (2H + V)) and the block of
    W in use stay in the core's caches. Between the passes W lives in the
    cores' L2 caches if it fits there, else in the L3 cache.
  - one GEMM per pass (larger batches): every array each pass reads or
    writes (x, W, h, d_z, d_h and the copy of x), once per pass, from
    DRAM: at batch 1000 they are larger than the caches. The GEMMs' own
    re-reads inside their blocking are not counted.

flops / bytes is the step's arithmetic intensity; the memory level's read
bandwidth times it is the most the step could compute if moving the bytes
were all it did. Where that exceeds the GEMM peak, the step is bounded by
arithmetic, and the gap to the peak is how well its products and its
element-wise work (exp and log1p, not counted as flops) use the cores.

The read bandwidths come from bandwidth.c (every core summing its own array
of a size that fits one level), compiled here with the C compiler.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, 'bandwidth.c')

# bytes per thread: each fits the level named and none before it on
# current x86 cores (L1 32-48 KB, L2 0.5-2 MB, L3 16 MB and more)
LEVELS = [('L1', 16 << 10), ('L2', 256 << 10), ('L3', 4 << 20),
          ('DRAM', 256 << 20)]
READ_BYTES = 8 << 30  # per timing and thread: about 0.05-0.2 s


def compile_library(folder):
    """bandwidth.c as a shared library in folder; None without a compiler."""
    compiler = os.environ.get('CC') or shutil.which('gcc') or \
        shutil.which('cc')
    if not compiler:
        return None
    target = os.path.join(folder, 'bandwidth.so')
    proc = subprocess.run([compiler, '-O3', '-march=native', '-fopenmp',
                           '-shared', '-fPIC', SOURCE, '-o', target],
                          capture_output=True, text=True)
    return target if proc.returncode == 0 else None


def read_bandwidths(threads):
    """{level: bytes per second read by `threads` threads together}, best
    of 5; {} when bandwidth.c cannot be compiled here."""
    with tempfile.TemporaryDirectory() as folder:
        path = compile_library(folder)
        if not path:
            return {}
        library = ctypes.CDLL(path)
        measure = library.read_bandwidth
        measure.restype = ctypes.c_double
        measure.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_int,
                            ctypes.c_int]
        result = {}
        for level, size in LEVELS:
            rate = measure(size, max(1, READ_BYTES // size // 8), threads, 5)
            if rate > 0:
                result[level] = rate
        return result


def l2_bytes_per_core():
    """The L2 cache of cpu0 (Linux's sysfs), or None."""
    base = '/sys/devices/system/cpu/cpu0/cache'
    try:
        for index in sorted(os.listdir(base)):
            with open(os.path.join(base, index, 'level')) as f:
                if f.read().strip() != '2':
                    continue
            with open(os.path.join(base, index, 'size')) as f:
                text = f.read().strip()
            scale = {'K': 1 << 10, 'M': 1 << 20}.get(text[-1], 1)
            return int(text.rstrip('KM')) * scale
    except (OSError, ValueError):
        return None
    return None


def step_flops(B, V, H):
    """The five matrix products: 5 x 2 B V H."""
    return 5 * 2.0 * B * V * H


def step_traffic(B, V, H, itemsize, blocked, cores):
    """(bytes a step moves beyond the cores' L2 caches, the level they come
    from): see the module's docstring."""
    if blocked:
        W = V * H * itemsize
        l2 = l2_bytes_per_core()
        level = 'L2' if l2 and W <= cores * l2 else 'L3'
        return 4 * W + B * V * itemsize, level
    BV, BH, VH = B * V, B * H, V * H
    elements = ((BV + VH + BH) +                # x W
                (BH + VH + BH) +                # h, and the squares of W
                (BH + VH + BV) +                # h W^T
                (3 * BV) +                      # d_z from a' and x
                (BV + VH + BH) +                # d_z W
                (3 * BH + 2 * VH + BV + 2 * BV)  # d_h, W's scaling, b', x
                + (2 * BV + 2 * BH + 2 * VH))   # the update's one GEMM
    return elements * itemsize, 'DRAM'
