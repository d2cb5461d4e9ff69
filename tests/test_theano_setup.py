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
    assert flags == ('floatX=float32,blas__ldflags=%s,allow_gc=False'
                     % theano_setup.default_ldflags())


def test_users_THEANO_FLAGS_ldflags_win(tmp_path):
    flags = flags_after_configure(
        tmp_path, THEANO_FLAGS='floatX=float32,blas__ldflags=-lmyblas')
    assert flags == 'floatX=float32,blas__ldflags=-lmyblas,allow_gc=False'


def test_users_theanorc_ldflags_win(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nallow_gc = True\n[blas]\nldflags = -lmyblas\n')
    assert flags_after_configure(tmp_path, THEANORC=str(rc)) == '<unset>'


def test_users_allow_gc_wins(tmp_path):
    flags = flags_after_configure(tmp_path, THEANO_FLAGS='allow_gc=True')
    assert flags == 'allow_gc=True,blas__ldflags=' + \
        theano_setup.default_ldflags()


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
    assert theano_setup.user_sets(env, 'blas__ldflags') is expected


def test_mkl_flags_name_the_wheels_library_with_an_rpath(tmp_path):
    assert theano_setup.mkl_ldflags(str(tmp_path)) == ''
    (tmp_path / 'lib').mkdir()
    (tmp_path / 'lib' / 'libmkl_rt.so.3').write_bytes(b'')
    lib = str(tmp_path / 'lib')
    flags = theano_setup.mkl_ldflags(str(tmp_path))
    assert flags == '-L%s -l:libmkl_rt.so.3 -Xlinker -rpath=%s' % (lib, lib)
    # Theano accepts only tokens that start with '-', and THEANO_FLAGS
    # splits on commas
    assert all(token.startswith('-') for token in flags.split())
    assert ',' not in flags


def test_theano_links_the_chosen_blas_and_computes_a_gemm_right(tmp_path):
    code = (
        'import theano_setup; theano_setup.configure()\n'
        'import numpy, theano, theano.tensor as T\n'
        'a, b = T.matrices("a", "b")\n'
        'f = theano.function([a, b], T.dot(a, b))\n'
        'assert any("Dot22" in str(n.op) for n in '
        'f.maker.fgraph.toposort()), "no BLAS op"\n'
        'x, y = numpy.random.rand(30, 40), numpy.random.rand(40, 20)\n'
        'assert numpy.allclose(f(x, y), x @ y, rtol=1e-12)\n'
        'maps = open("/proc/self/maps").read()\n'
        'print(theano.config.blas__ldflags)\n'
        'print("mkl" if "libmkl_rt" in maps else "openblas" '
        'if "libopenblas" in maps else "other")\n')
    r = run_script(['-c', code])
    assert r.returncode == 0, r.stderr
    ldflags, loaded = r.stdout.split('\n')[:2]
    assert ldflags == theano_setup.default_ldflags()
    if 'mkl' in ldflags:
        assert loaded == 'mkl'
    elif ldflags == '-lopenblas':
        assert loaded == 'openblas'
