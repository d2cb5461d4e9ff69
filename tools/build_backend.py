"""The build backend of ``pip install`` (pyproject.toml names it): setuptools,
plus one file in every wheel it builds.

setuptools builds the wheel from setup.cfg as usual (the tutorial modules,
the machinery package, the stack for the Python that installs it). This
adds ``theano_contractive_autoencoder.pth`` at the wheel's root, so it
lands in site-packages, and lists it in the wheel's RECORD, so that ``pip
uninstall`` removes it. Its one line runs as Python starts and installs
machinery/stack_hook.py's finder: a program that imports ``theano`` before
``cA`` then gets the same stack settings as ``python cA.py``. The editable
wheel (``pip install -e``, what ``make`` does) gets it too; its name sorts
after setuptools' own ``__editable__`` file, which must run first to make
``machinery`` importable.
"""
import base64
import hashlib
import os
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the other hooks)

PTH_NAME = 'theano_contractive_autoencoder.pth'
PTH_LINE = b'import machinery.stack_hook as hook; hook.install()\n'


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return '%s,sha256=%s,%d\n' % (name, digest.rstrip(b'=').decode(),
                                 len(data))


def _add_pth(wheel_directory, wheel_name):
    """Rewrite the wheel with the .pth file in it and in its RECORD."""
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path) as wheel:
        members = [(info, wheel.read(info)) for info in wheel.infolist()]
    with zipfile.ZipFile(path + '.part', 'w', zipfile.ZIP_DEFLATED) as out:
        out.writestr(PTH_NAME, PTH_LINE)
        for info, data in members:
            if info.filename.endswith('.dist-info/RECORD'):
                data = _record_line(PTH_NAME, PTH_LINE).encode() + data
            out.writestr(info, data)
    os.replace(path + '.part', path)
    return wheel_name


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    return _add_pth(wheel_directory, _setuptools.build_wheel(
        wheel_directory, config_settings, metadata_directory))


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    return _add_pth(wheel_directory, _setuptools.build_editable(
        wheel_directory, config_settings, metadata_directory))
