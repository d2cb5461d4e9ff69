"""What the command lines of the tutorial share.

Each script (cA.py, logistic_sgd.py, ScA.py, paper/*.py) builds its
parser with ``parser_for(function, description)``, whose defaults come from
the training function's own keyword defaults (one place for each default),
adds its flags with ``add(parser, ...)`` (the shared ones, like
``--dataset`` and ``--seed``, have their help text here), and runs with
``main(function, parser, argv)``.

``main`` turns what can go wrong into what a user can act on:

- a mistake of the user's (a bad value, a missing or corrupt file, a folder
  that cannot be written, another run in the same folder, a diverged
  training) prints one line, ``error: <what is wrong and what to do>``,
  and exits with status 2, without a traceback;
- argparse's own complaints (an unknown flag, ``--epochs x``) print one
  such line too;
- an interrupted training (SIGINT, SIGTERM or SIGHUP, see
  checkpoints.py) prints where its checkpoint is and the command that
  resumes it, and exits with 128 + the signal's number (130 for Ctrl-C,
  143 for SIGTERM, 129 for SIGHUP);
- Ctrl-C at any other moment (loading data, compiling) prints one line and
  exits with 130.
"""
import argparse
import ast
import contextlib
import errno
import inspect
import os
import shutil
import signal
import sys

from . import checkpoints
from . import checks
from . import mnist_file
from . import outputs
from .shell import shell_quote

# the user's mistakes: one line, exit code 2
USER_ERRORS = (checks.ConfigError, mnist_file.DatasetError,
               checkpoints.CheckpointError, checks.DivergenceError,
               outputs.OutputError)

HELP = {
    'dataset': 'the mnist.pkl.gz file; fetched when missing (default: '
               '%s)' % mnist_file.SHOWN_PATH.replace('%', '%%'),
    'seed': 'seed of the RandomState that draws the initial weights, 0 to '
            '%d (default: %%(default)s)' % (checks.SEED_LIMIT - 1),
    'batch_size': 'examples per minibatch (default: %(default)s)',
    'learning_rate': 'SGD step size (default: %(default)s)',
    'output_folder': 'where the outputs are written (default: '
                     '%(default)s)',
    'gradient': "the SGD step: 'auto' trains the cA class's own graph "
                "(get_cost_updates, T.grad), which the compiled kernel "
                "replaces only where it is the stock graph; 'T.grad' that "
                "graph always; 'fused' the hand-derived gradient as a "
                "graph (machinery/kernel/fused.py); 'kernel' the kernel "
                "always "
                "(default: %(default)s)",
    'contraction_level': 'lambda, the weight of the Jacobian penalty; 0 '
                         'trains a plain auto-encoder (default: '
                         '%(default)s)',
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its complaints on one ``error:`` line."""

    def error(self, message):
        self.exit(2, 'error: %s (see %s --help)\n' % (message, self.prog))


def defaults_of(function):
    """{keyword: default} of a function's signature; a dict is taken as
    such a mapping already (defaults_in_source's)."""
    if isinstance(function, dict):
        return dict(function)
    return {name: p.default for name, p
            in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def defaults_in_source(path, name):
    """{keyword: default} of the function ``name`` defined at the top of
    the Python file ``path``, read from its source without running it (for
    --help before the stack loads). A default that is not a literal
    (mnist_data.DEFAULT_PATH) is given as its source text."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args
            pairs = list(zip(args.args[len(args.args) - len(args.defaults):],
                             args.defaults)) + \
                [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults)
                 if d is not None]
            return {arg.arg: _literal_or_text(default)
                    for arg, default in pairs}
    raise LookupError('no function %s in %s' % (name, path))


def _literal_or_text(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def parser_for(function, description):
    """A parser whose flags take their defaults from ``function`` (or from
    a dict of them)."""
    parser = ArgumentParser(description=description)
    parser.set_defaults(_defaults=defaults_of(function))
    return parser


def add(parser, flag, dest=None, help=None, **kwargs):
    """Add ``flag`` with the default of the function's keyword ``dest``
    (by default the flag's name) and its help text (by default the shared
    one of HELP). A ``default=`` given here wins: a flag for a keyword of
    another function."""
    dest = dest or flag.lstrip('-').replace('-', '_')
    if 'default' not in kwargs:
        kwargs['default'] = parser.get_default('_defaults')[dest]
    if kwargs.get('action') is None and 'choices' not in kwargs:
        # (with choices, argparse shows them instead: {auto,kernel,...})
        kwargs.setdefault('metavar', flag.lstrip('-').upper().replace('-', '_'))
    parser.add_argument(flag, dest=dest, help=help or HELP[dest], **kwargs)


def arguments(parser, argv=None):
    """Parse argv into {keyword: value} for the training function."""
    values = vars(parser.parse_args(argv))
    values.pop('_defaults')
    return values


def python_command():
    """How to start this interpreter from this shell: ``python`` when the
    ``python`` on PATH is this very environment's (an activated .venv),
    else this interpreter's path, relative when it lies below the working
    directory (.venv/bin/python). The environment's folder is compared,
    not the resolved file: a virtual environment's python resolves to the
    interpreter it was made from, which lacks the environment's packages."""
    on_path = shutil.which('python')
    if on_path and os.path.dirname(os.path.abspath(on_path)) == \
            os.path.dirname(os.path.abspath(sys.executable)):
        return 'python'
    return shortest_path(sys.executable)


def shortest_path(path):
    """path relative to the working directory when it lies below it."""
    relative = os.path.relpath(os.path.abspath(path))
    return relative if not relative.startswith('..') else \
        os.path.abspath(path)


def rerun_command(parser, args, *extra):
    """The command that runs this script again with the same arguments
    (those that differ from their defaults) plus ``extra`` flags; it works
    when pasted into the same shell: the same interpreter, the script the
    same way (``-m cA`` for ``python -m cA``), and a PYTHONPATH this run
    had, which may have been a prefix of its command rather than the
    shell's own."""
    main_spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    script = ['-m', main_spec.name] if main_spec is not None else \
        [shortest_path(sys.argv[0])]
    words = [python_command()] + script + list(extra)
    defaults = parser.get_default('_defaults')
    for action in parser._actions:
        if not action.option_strings or action.dest not in args:
            continue
        value = args[action.dest]
        if value == defaults.get(action.dest, action.default) or \
                action.option_strings[-1] in extra:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag] + [str(v) for v in value]
        else:
            words += [flag, str(value)]
    prefix = 'PYTHONPATH=%s ' % shell_quote(os.environ['PYTHONPATH']) \
        if os.environ.get('PYTHONPATH') else ''
    return prefix + ' '.join(shell_quote(w) for w in words)


def main(function, parser, argv=None, resume_flag=None):
    """Parse argv, call function(**arguments) and return the exit code
    (see the module docstring). ``resume_flag``: the flag that resumes an
    interrupted run, for the hint printed when one stops."""
    # from here on, Ctrl-C is a KeyboardInterrupt (the scripts ignore it
    # quietly while their modules load), reported below
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # a path that is not valid text in the file system's encoding (it
    # reaches Python as surrogate escapes) is printed with escapes rather
    # than failing the first line that names it
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors='backslashreplace')
    args = arguments(parser, argv)
    try:
        function(**args)
        sys.stdout.flush()
    except USER_ERRORS as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    except checkpoints.TrainingInterrupted as e:
        hint = ''
        if resume_flag:
            hint = '; resume with: ' + rerun_command(parser, args,
                                                     resume_flag)
        # after SIGHUP the terminal may be gone; the files are written
        with contextlib.suppress(OSError):
            print(str(e) + hint, file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print('interrupted (Ctrl-C); nothing was left half-written',
              file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as e:
        if isinstance(e, OSError) and stdout_failed(e):
            return stop_for_stdout(e, resume_flag)
        # what the stack raises when the environment fails it
        backend = sys.modules.get('machinery.backend')
        failure = backend and (backend.lock_timeout(e) or
                               backend.compile_failure(e))
        if not failure:
            raise
        print('error: %s' % failure, file=sys.stderr)
        return 2
    return 0


def stdout_failed(error):
    """Whether an OSError came from writing the standard output: a closed
    pipe (``| head``) or a full device (``> /dev/full``). The scripts
    write no other pipe, and their files only through outputs.py, whose
    errors are OutputErrors; a failed flush drops the line it could not
    write, so flushing again tells only when more is buffered."""
    if isinstance(error, BrokenPipeError):
        return True
    try:
        sys.stdout.flush()
    except OSError:
        return True
    return error.errno == errno.ENOSPC and getattr(error, 'filename',
                                                   None) is None


def stop_for_stdout(error, resume_flag):
    """The run stopped because its standard output cannot be written: one
    line on stderr (saying how a checkpoint resumes, where there is one),
    and the output silenced so that Python's own flush at exit stays
    quiet. What was written to files is whole (atomic writes)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    hint = ' (a checkpoint it wrote goes on with %s)' % resume_flag \
        if resume_flag else ''
    broken = isinstance(error, BrokenPipeError)
    with contextlib.suppress(OSError):
        print('stopped: the standard output %s; the files written so far '
              'are whole%s' % ('was closed (the program reading it ended)'
                               if broken else 'cannot be written (%s)'
                               % outputs.os_error_cause(error), hint),
              file=sys.stderr)
    return 128 + signal.SIGPIPE if broken else 2
