"""The scripts' command lines: --help answers before the stack loads, with
the same text as the parser built from the loaded functions."""
import os
import subprocess
import sys

import pytest

from machinery import commands
from conftest import REPO


def loaded_parser(script):
    """The parser of ``script`` built from its imported functions."""
    if script == 'cA.py':
        import cA
        return commands.cA_parser(cA.test_cA)
    if script == 'logistic_sgd.py':
        import logistic_sgd
        return commands.logistic_sgd_parser(
            logistic_sgd.sgd_optimization_mnist)
    import ScA
    if script == 'ScA.py':
        return commands.scA_parser(ScA.test_ScA)
    if script == 'paper/table1.py':
        from paper import table1
        return commands.table1_parser(table1.compare, ScA.test_ScA)
    from paper import analysis
    return commands.analysis_parser(analysis.run_analysis)


@pytest.mark.parametrize('script', ['cA.py', 'logistic_sgd.py', 'ScA.py',
                                    'paper/analysis.py', 'paper/table1.py'])
def test_help_comes_before_the_stack_and_says_what_the_loaded_parser_says(
        script, tmp_path, monkeypatch):
    # a stack that cannot load (CA_BACKEND names none): --help must not
    # need it
    env = dict(os.environ, CA_BACKEND='none-such', COLUMNS='80')
    r = subprocess.run([sys.executable, os.path.join(REPO, script),
                        '--help'], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ''
    parser = loaded_parser(script)
    parser.prog = os.path.basename(script)
    monkeypatch.setenv('COLUMNS', '80')  # argparse wraps to it
    assert r.stdout == parser.format_help()
    assert os.listdir(str(tmp_path)) == []


def test_without_help_the_stack_is_loaded_and_its_error_said():
    """The early answer is for --help only: a run needs the stack, and a
    stack that cannot load gets its one-line error."""
    env = dict(os.environ, CA_BACKEND='none-such')
    r = subprocess.run([sys.executable, 'cA.py', '--epochs', '1'], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith('error:') and 'CA_BACKEND' in r.stderr


def test_the_usage_line_shows_the_choices_of_gradient():
    import cA
    usage = commands.cA_parser(cA.test_cA).format_usage()
    assert '--gradient {auto,kernel,fused,T.grad}' in usage
