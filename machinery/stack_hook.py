"""The stack's settings for a program that imports the stack itself first.

A Theano tutorial begins with ``import theano``; ours must then work when
it imports ``cA``. Without our flags, Theano-PyMC 1.1.2 does not even
import under numpy 1.23 (it looks for a BLAS in numpy.distutils and finds
none), and a program that imported it first would train with other
settings than ``python cA.py`` does. So an installed copy of the tutorial
(``pip install``, or ``make``'s editable install into .venv/) carries a
``.pth`` file in site-packages whose one line calls ``install()`` as
Python starts. ``install`` only puts a finder in front of ``sys.meta_path``;
the first time the import system looks for ``theano`` or ``pytensor`` (an
import, or importlib.util.find_spec), the finder gives that stack the
flags of stack.configure (the user's own settings still
win), steps aside and lets the import go on as usual. A program that never
imports a stack pays one finder lookup per import and nothing else.
"""
import sys

# the packages of the two stacks (stack.STACKS), written out so that
# Python's start imports nothing more than this small module
PACKAGES = ('theano', 'pytensor')


class _ConfigureStack(object):
    """A meta-path finder that finds nothing: it configures a stack as the
    stack's package is first looked for."""

    def find_spec(self, name, path=None, target=None):
        if name in PACKAGES:
            uninstall()
            try:
                from . import stack
                stack.configure(stack.STACKS[name])
            except Exception:
                # never break a user's import: the stack then starts with
                # its own defaults, as it would without us
                pass
        return None


def install():
    """Put the finder first on sys.meta_path, once."""
    if not any(isinstance(f, _ConfigureStack) for f in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureStack())


def uninstall():
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, _ConfigureStack)]
