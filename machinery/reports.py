"""What the long scripts (ScA.py, analysis.py) report besides their
science: JSON files, the dataset's fingerprint, the machine, time left."""
import hashlib
import json
import os
import platform

import numpy

from . import outputs


def write_json(path, report):
    """Write report as JSON (numpy values as Python ones, NaN and infinity
    as null), atomically; returns what was written."""
    report = jsonable(report)
    with outputs.atomic_write(path, 'w') as f:
        json.dump(report, f, indent=1, allow_nan=False)
        f.write('\n')
    return report


def jsonable(value):
    """value with numpy types turned into Python ones and NaN into None."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, numpy.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, numpy.integer):
        return int(value)
    if isinstance(value, (float, numpy.floating)):
        return float(value) if numpy.isfinite(value) else None
    return value


def file_sha256(path):
    """The sha256 of a file: a dataset named by its contents, not its
    path."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def machine(stack_name, floatX):
    """What ran a report: the Python, the stack, floatX, the cores."""
    return {'python': platform.python_version(), 'stack': stack_name,
            'floatX': floatX, 'cpus': os.cpu_count()}


def code_version(folder=None):
    """The commit of the code that made a report: {'commit': the git
    commit of ``folder`` (default: this repository), 'modified': whether
    tracked files differ from it}; commit None outside a git checkout or
    without git. Asked of git itself, read-only."""
    import subprocess
    folder = folder or os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(['git', '-C', folder] + list(args),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              timeout=30)
    try:
        head = git('rev-parse', '--verify', 'HEAD')
        if head.returncode != 0:
            return {'commit': None, 'modified': None}
        status = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.SubprocessError):
        return {'commit': None, 'modified': None}
    return {'commit': head.stdout.strip(),
            'modified': bool(status.stdout.strip())}


def time_left(elapsed, done, total):
    """'  ~4.8 min left' for work that took ``elapsed`` seconds for
    ``done`` of its ``total`` parts; '' when it is over."""
    if done >= total:
        return ''
    return '  ~%.1f min left' % (elapsed / done * (total - done) / 60)
