"""backend: which stack, its default flags, and the user's choice wins."""
import os
import subprocess
import sys

import pytest

from machinery import backend
from machinery import stack as stack_choice
from conftest import run_script

STACK = backend.STACK
FLAGS = STACK.flags_var
SHOW_FLAGS = ('import os; from machinery import backend; print(backend.STACK.key); '
              'print(os.environ.get(backend.STACK.flags_var, "<unset>"))')
# the defaults the module adds on this stack, in its order
OWN = ''.join(',%s=%s' % item for item in STACK.own_defaults)


def clean_environ(tmp_path, **env):
    """os.environ without any stack's flags or rc files, plus env."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ('THEANO_FLAGS', 'THEANORC', 'PYTENSOR_FLAGS',
                            'PYTENSORRC', stack_choice.ENV_VAR)}
    environ['THEANORC'] = str(tmp_path / 'no-such-theanorc')
    environ['PYTENSORRC'] = str(tmp_path / 'no-such-pytensorrc')
    environ.update(env)
    return environ


def flags_after_import(tmp_path, **env):
    r = run_script(['-c', SHOW_FLAGS], env=clean_environ(tmp_path, **env))
    assert r.returncode == 0, r.stderr
    key, flags = r.stdout.split('\n')[:2]
    assert key == STACK.key
    return flags


def test_adds_ldflags_and_keeps_the_users_other_flags(tmp_path):
    flags = flags_after_import(tmp_path, **{FLAGS: 'floatX=float32'})
    assert flags == ('floatX=float32,blas__ldflags=%s,allow_gc=False%s'
                     % (stack_choice.default_ldflags(), OWN))


def test_users_ldflags_win(tmp_path):
    flags = flags_after_import(
        tmp_path, **{FLAGS: 'floatX=float32,blas__ldflags=-lmyblas'})
    assert flags == ('floatX=float32,blas__ldflags=-lmyblas,allow_gc=False'
                     + OWN)


def test_users_rc_file_wins(tmp_path):
    rc = tmp_path / 'rc'
    rc.write_text('[global]\nallow_gc = True\nlinker = cvm\n'
                  '[blas]\nldflags = -lmyblas\n')
    assert flags_after_import(tmp_path, **{STACK.rc_var: str(rc)}) == \
        '<unset>'


def test_users_allow_gc_wins(tmp_path):
    flags = flags_after_import(tmp_path, **{FLAGS: 'allow_gc=True'})
    assert flags == ('allow_gc=True,blas__ldflags=%s%s'
                     % (stack_choice.default_ldflags(), OWN))


def test_the_flags_reach_the_stack(tmp_path):
    code = ('from machinery.backend import theano\n'
            'print(theano.config.allow_gc, theano.config.floatX)\n')
    r = run_script(['-c', code], env=clean_environ(
        tmp_path, **{FLAGS: 'floatX=float32'}))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['False', 'float32']


def test_openblas_is_chosen_exactly_when_gcc_can_link_it(tmp_path):
    # an independent check: link a program that calls dgemm_ from OpenBLAS
    source = tmp_path / 'uses_blas.c'
    source.write_text('void dgemm_(void);\nint main(void) '
                      '{ dgemm_(); return 0; }\n')
    links = subprocess.run(['gcc', str(source), '-lopenblas', '-o',
                            str(tmp_path / 'a.out')],
                           capture_output=True).returncode == 0
    assert stack_choice.openblas_ldflags() == ('-lopenblas' if links else '')


@pytest.mark.parametrize('flags, expected', [
    ('blas__ldflags=', True), ('floatX=float32', False),
    ('device=cpu,blas__ldflags=-lblas', True)])
def test_user_sets_reads_the_flags_variable(tmp_path, flags, expected):
    env = {FLAGS: flags, STACK.rc_var: str(tmp_path / 'none')}
    assert stack_choice.user_sets(STACK, env, 'blas__ldflags') is expected


def test_each_stack_reads_only_its_own_variable(tmp_path):
    theano, pytensor = stack_choice.STACKS['theano'], stack_choice.STACKS['pytensor']
    env = {'THEANO_FLAGS': 'allow_gc=True',
           'THEANORC': str(tmp_path / 'none'),
           'PYTENSORRC': str(tmp_path / 'none')}
    assert stack_choice.user_sets(theano, env, 'allow_gc')
    assert not stack_choice.user_sets(pytensor, env, 'allow_gc')


def test_mkl_flags_name_the_wheels_library_with_an_rpath(tmp_path):
    assert stack_choice.mkl_ldflags(str(tmp_path)) == ''
    (tmp_path / 'lib').mkdir()
    (tmp_path / 'lib' / 'libmkl_rt.so.3').write_bytes(b'')
    lib = str(tmp_path / 'lib')
    flags = stack_choice.mkl_ldflags(str(tmp_path))
    assert flags == '-L%s -l:libmkl_rt.so.3 -Xlinker -rpath=%s' % (lib, lib)
    # the stacks accept only tokens that start with '-', and the flags
    # variables split on commas
    assert all(token.startswith('-') for token in flags.split())
    assert ',' not in flags


@pytest.mark.slow  # compiles and links a C program and a Theano function
def test_the_stack_links_the_chosen_blas_and_computes_a_gemm_right():
    code = (
        'import numpy\n'
        'from machinery.backend import theano, T\n'
        'a, b = T.matrices("a", "b")\n'
        'f = theano.function([a, b], T.dot(a, b))\n'
        'assert any("Dot22" in str(n.op) or "Gemm" in str(n.op) for n in '
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
    assert ldflags == stack_choice.default_ldflags()
    if 'mkl' in ldflags:
        assert loaded == 'mkl'
    elif ldflags == '-lopenblas':
        assert loaded == 'openblas'


def test_CA_BACKEND_picks_an_installed_stack(tmp_path):
    assert flags_after_import(tmp_path, CA_BACKEND=STACK.key.upper()) != \
        '<unset>'


@pytest.mark.parametrize('value, says', [
    ('tensorflow', 'is not a stack'), ('missing', 'is not installed')])
def test_CA_BACKEND_that_cannot_be_used_is_one_error_line(tmp_path, value,
                                                          says):
    if value == 'missing':
        others = [key for key, stack in stack_choice.STACKS.items()
                  if not stack.installed()]
        if not others:
            pytest.skip('both stacks are installed here')
        value = others[0]
    # a run (not --help, which answers without the stack): the stack is
    # imported first, before any setting is read
    out = str(tmp_path / 'out')
    r = run_script(['cA.py', '--epochs', '1', '--output-folder', out],
                   env=clean_environ(tmp_path, CA_BACKEND=value))
    assert r.returncode == 2
    assert not os.path.exists(out)
    assert r.stderr.startswith('error: CA_BACKEND=%s' % value)
    assert says in r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr


def test_python_without_either_stack_is_told_what_to_do(tmp_path):
    """A bare interpreter (a new venv with nothing installed), as when a
    learner types `python cA.py` outside .venv/."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(tmp_path / 'bare')], check=True)
    r = subprocess.run([str(tmp_path / 'bare' / 'bin' / 'python'), '-c',
                        'from machinery import backend'], cwd=os.path.dirname(
                            os.path.dirname(os.path.abspath(
                                backend.__file__))),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith('error: neither Theano-PyMC nor PyTensor')
    assert '.venv/bin/python' in r.stderr
    assert r.stderr.count('\n') == 1


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('users, expected', [
    ({}, '3000 -'),
    ({'OMP_WAIT_POLICY': 'ACTIVE'}, '- ACTIVE'),
    ({'GOMP_SPINCOUNT': '1000000'}, '1000000 -')])
def test_openmp_threads_spin_briefly_unless_the_user_says(
        tmp_path, users, expected):
    # what libgomp reads when the kernel's module loads it, after backend
    code = ('import os; from machinery import backend; print(os.environ.get("GOMP_SPINCOUNT", "-"),'
            ' os.environ.get("OMP_WAIT_POLICY", "-"))')
    env = clean_environ(tmp_path)
    env.pop('OMP_WAIT_POLICY', None)
    env.pop('GOMP_SPINCOUNT', None)
    env.update(users)
    r = run_script(['-c', code], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected
