"""theano_setup: a default BLAS for Theano, and the user's choice wins."""
import os
import subprocess

import pytest

import theano_setup
from conftest import run_script

SHOW_FLAGS = ('import os, theano_setup; theano_setup.configure(); '
              'print(os.environ.get("THEANO_FLAGS", "<unset>"))')


def flags_after_configure(tmp_path, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ('THEANO_FLAGS', 'THEANORC')}
    environ['THEANORC'] = str(tmp_path / 'no-such-theanorc')
    environ.update(env)
    r = run_script(['-c', SHOW_FLAGS], env=environ)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_adds_ldflags_and_keeps_the_users_other_flags(tmp_path):
    flags = flags_after_configure(tmp_path, THEANO_FLAGS='floatX=float32')
    assert flags == 'floatX=float32,blas__ldflags=' + \
        theano_setup.openblas_ldflags()


def test_users_THEANO_FLAGS_ldflags_win(tmp_path):
    flags = flags_after_configure(
        tmp_path, THEANO_FLAGS='floatX=float32,blas__ldflags=-lmyblas')
    assert flags == 'floatX=float32,blas__ldflags=-lmyblas'


def test_users_theanorc_ldflags_win(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[blas]\nldflags = -lmyblas\n')
    assert flags_after_configure(tmp_path, THEANORC=str(rc)) == '<unset>'


def test_openblas_is_chosen_exactly_when_gcc_can_link_it(tmp_path):
    # an independent check: link a program that calls dgemm_ from OpenBLAS
    source = tmp_path / 'uses_blas.c'
    source.write_text('void dgemm_(void);\nint main(void) '
                      '{ dgemm_(); return 0; }\n')
    links = subprocess.run(['gcc', str(source), '-lopenblas', '-o',
                            str(tmp_path / 'a.out')],
                           capture_output=True).returncode == 0
    assert theano_setup.openblas_ldflags() == ('-lopenblas' if links else '')


@pytest.mark.parametrize('flags, expected', [
    ('blas__ldflags=', True), ('floatX=float32', False),
    ('device=cpu,blas__ldflags=-lblas', True)])
def test_user_sets_ldflags_reads_THEANO_FLAGS(tmp_path, flags, expected):
    env = {'THEANO_FLAGS': flags, 'THEANORC': str(tmp_path / 'none')}
    assert theano_setup.user_sets_ldflags(env) is expected
