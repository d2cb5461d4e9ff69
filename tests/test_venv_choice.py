"""tools/venv.sh --which: which Python, and so which stack, make sets up.

Each case builds a PATH of its own (symbolic links to the real
interpreters of this machine, and a fake `pyenv` where it matters), so the
choice depends only on what the case puts there.
"""
import glob
import os
import shutil
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'tools', 'venv.sh')


def interpreter(minor):
    """A real python3.<minor> of this machine, or None."""
    for path in sorted(glob.glob(os.path.expanduser(
            '~/.pyenv/versions/3.%d.*/bin/python3.%d' % (minor, minor))) +
            ['/usr/bin/python3.%d' % minor,
             '/usr/local/bin/python3.%d' % minor]):
        ok = subprocess.run([path, '-c', 'import venv'],
                            capture_output=True).returncode == 0
        if ok:
            return path
    return None


def need(*minors):
    found = {m: interpreter(m) for m in minors}
    missing = [m for m, path in found.items() if path is None]
    if missing:
        pytest.skip('no python3.%s on this machine' % missing[0])
    return found


def which(tmp_path, names, python=''):
    """venv.sh --which with only `names` ({name: target}) on PATH."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for name, target in names.items():
        (bin_dir / name).symlink_to(target)
    for tool in ('sh', 'cut', 'tr', 'ls', 'sed', 'cksum', 'gcc', 'cat'):
        path = subprocess.run(['sh', '-c', 'command -v ' + tool],
                              capture_output=True, text=True).stdout.strip()
        if path and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(path)
    # a .venv/ of its own, which none of these has made yet
    env = {'PATH': str(bin_dir), 'HOME': str(tmp_path),
           'VENV': str(tmp_path / 'venv')}
    return subprocess.run(['sh', SCRIPT, '--which', python], cwd=REPO,
                          env=env, capture_output=True, text=True)


def test_a_theano_python_comes_first(tmp_path):
    found = need(11, 13)
    r = which(tmp_path, {'python3.13': found[13], 'python3.11': found[11]})
    assert r.returncode == 0, r.stderr
    version, stack = r.stdout.split()[1:]
    assert version.startswith('3.11.') and stack == 'theano'


def test_without_one_the_newest_312_or_later_gets_pytensor(tmp_path):
    found = need(12, 13)
    r = which(tmp_path, {'python3.12': found[12], 'python3.13': found[13]})
    assert r.returncode == 0, r.stderr
    version, stack = r.stdout.split()[1:]
    assert version.startswith('3.13.') and stack == 'pytensor'


def test_python_chooses(tmp_path):
    found = need(11, 12)
    r = which(tmp_path, {'python3.11': found[11]}, python=found[12])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1].startswith('3.12.')
    assert r.stdout.split()[2] == 'pytensor'


def test_a_name_pyenv_will_not_run_is_found_among_its_versions(tmp_path):
    # a shim that fails, as pyenv's do for versions it has not selected,
    # and a pyenv whose root holds the version
    found = need(13)
    root = tmp_path / 'pyenv-root'
    (root / 'versions' / '3.13.9' / 'bin').mkdir(parents=True)
    (root / 'versions' / '3.13.9' / 'bin' / 'python3.13').symlink_to(
        found[13])
    shims = tmp_path / 'shims'
    shims.mkdir()
    (shims / 'python3.13').write_text('#!/bin/sh\nexit 127\n')
    (shims / 'pyenv').write_text('#!/bin/sh\necho %s\n' % root)
    for path in (shims / 'python3.13', shims / 'pyenv'):
        path.chmod(0o755)
    r = which(tmp_path, {'python3.13': shims / 'python3.13',
                         'pyenv': shims / 'pyenv'}, python='python3.13')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1].startswith('3.13.')
    assert r.stdout.split()[2] == 'pytensor'


@pytest.mark.parametrize('python, phrase', [
    ('python3.99', 'is not a program on PATH'),
    ('/bin/false', 'does not run'),
])
def test_an_unusable_python_gets_one_error_line(tmp_path, python, phrase):
    r = which(tmp_path, {}, python=python)
    assert r.returncode == 2
    assert r.stdout == ''
    assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1
    assert phrase in r.stderr


def test_a_python_too_old_is_refused_and_said_so(tmp_path):
    found = need(8)
    r = which(tmp_path, {}, python=found[8])
    assert r.returncode == 2
    assert 'too old' in r.stderr and '3.9 to 3.11' in r.stderr


def test_no_python_at_all_says_what_to_install(tmp_path):
    r = which(tmp_path, {})
    assert r.returncode == 2
    assert 'no Python 3.9 or newer found' in r.stderr
    assert 'python3.11-venv' in r.stderr


# ---- a choice stays made; one make at a time sets up .venv/ -------------

def made_with(venv, python):
    """A .venv/ that python made, ready as venv.sh leaves one: its stamp
    (the choice, then the checksum of the install's files) and a
    bin/python."""
    out = subprocess.run(
        [python, '-c', 'import sys; v = sys.version_info; print("%d.%d.%d '
         '%s" % (v[0], v[1], v[2], sys.executable))'],
        capture_output=True, text=True, check=True).stdout.split()
    version, executable = out
    stack = 'theano' if version.split('.')[1] in ('9', '10', '11') \
        else 'pytensor'
    (venv / 'bin').mkdir(parents=True)
    # an interpreter that finds the packages venv.sh looks for (empty
    # stand-ins: nothing here imports them)
    stand_ins = venv / 'stand-ins'
    for package in ('theano', 'pytensor', 'numpy', 'PIL', 'pytest',
                    'nbclient', 'machinery'):
        (stand_ins / package).mkdir(parents=True)
        (stand_ins / package / '__init__.py').write_text('')
    (stand_ins / 'machinery' / 'stack_hook.py').write_text('')
    (stand_ins / 'cA.py').write_text('')
    (venv / 'bin' / 'python').write_text(
        '#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n' % (stand_ins, python))
    (venv / 'bin' / 'python').chmod(0o755)
    checksum = subprocess.run('cat setup.cfg pyproject.toml '
                              'tools/build_backend.py | cksum', shell=True,
                              cwd=REPO,
                              capture_output=True, text=True).stdout.strip()
    (venv / '.stack').write_text('%s %s %s\n%s\n' % (executable, version,
                                                     stack, checksum))
    return version, stack


def test_the_python_venv_was_made_with_stays_the_choice(tmp_path):
    """make run PYTHON=python3.12, then a plain make test: the same
    .venv/, though a 3.11 (which make would pick first) is on PATH."""
    found = need(11, 12)
    version, stack = made_with(tmp_path / 'venv', found[12])
    r = which(tmp_path, {'python3.11': found[11]})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1:] == [version, 'pytensor']


def test_python_still_replaces_the_choice(tmp_path):
    found = need(11, 12)
    made_with(tmp_path / 'venv', found[12])
    r = which(tmp_path, {'python3.12': found[12]}, python=found[11])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[2] == 'theano'


def test_a_ready_venv_at_a_relative_path_is_kept_as_it_is(tmp_path):
    """make's VENV is .venv, relative to the checkout: a second make finds
    it ready and installs nothing (venv.sh looks for the packages from /,
    where a relative path finds no python)."""
    found = need(11)
    # a checkout of the files whose checksum the stamp holds, with its
    # .venv/ inside (a path relative to it that does not climb to /)
    checkout = tmp_path / 'checkout'
    (checkout / 'tools').mkdir(parents=True)
    for name in ('setup.cfg', 'pyproject.toml', 'tools/build_backend.py'):
        shutil.copy(os.path.join(REPO, name), str(checkout / name))
    made_with(checkout / '.venv', found[11])
    env = dict(os.environ, VENV='.venv')
    r = subprocess.run(['sh', SCRIPT], cwd=str(checkout),
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert 'is ready' in r.stdout.splitlines()[-1], r.stdout
    assert 'installing' not in r.stdout


def test_a_second_make_waits_for_the_first_and_says_so(tmp_path):
    """The first holds the lock (here a real flock process); the second
    says that it waits, then finds .venv/ ready and deletes nothing."""
    found = need(11)
    if subprocess.run(['sh', '-c', 'command -v flock'],
                      capture_output=True).returncode != 0:
        pytest.skip('no flock on this machine')
    venv = tmp_path / 'venv'
    made_with(venv, found[11])
    lock = str(venv) + '.lock'
    holder = subprocess.Popen(['flock', lock, 'sleep', '3'])
    try:
        while not os.path.exists(lock):
            time.sleep(0.05)
        time.sleep(0.3)  # for flock to take it
        start = time.time()
        r = subprocess.run(['sh', SCRIPT], cwd=REPO, capture_output=True,
                           text=True, timeout=60,
                           env=dict(os.environ, VENV=str(venv)))
        waited = time.time() - start
    finally:
        holder.wait()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith('another make is setting up')
    assert 'is ready' in lines[1]
    assert waited > 1
    assert (venv / 'bin' / 'python').exists() and (venv / '.stack').exists()
