#!/bin/sh
# Pick the Python and the stack, and keep .venv/ set up for them.
#
#   sh tools/venv.sh [PYTHON]          (what `make venv` runs)
#   sh tools/venv.sh --which [PYTHON]  (print the choice, change nothing)
#
# Which Python: PYTHON when given; else the one .venv/ was made with, while
# it still runs (a choice stays made until PYTHON names another); else the
# first of python3.11, python3.10 and python3.9 that runs, with the
# Theano-PyMC stack (the faithful port); else the newest Python 3.12 or
# later that runs, with PyTensor. The stack follows from the version:
# 3.9-3.11 Theano-PyMC, 3.12+ PyTensor.
# Candidates come from PATH, then from pyenv's versions folder (pyenv's
# shims refuse to run a version it has not selected).
#
# It prints one line saying which Python and which stack, rebuilds .venv/
# when PYTHON names another (saying what it replaces), and installs this
# checkout into it in editable mode (pip install -e ".[test]": the modules,
# the stack, the test tools), again when setup.cfg, pyproject.toml or
# tools/build_backend.py changed. Setting up holds a lock ($VENV.lock, with
# flock): a second make in the same folder says that it waits, then finds
# .venv/ ready; nothing deletes an environment another make is building.
# A missing or unusable interpreter gets one `error:` line saying what to
# install, and exit code 2.
#
# Two variables serve the benchmark, which sets up both stacks: VENV, the
# folder (default .venv), and CA_BACKEND=theano or pytensor, which picks
# among that stack's Pythons only.
set -u
VENV=${VENV:-.venv}
WANT=${CA_BACKEND:-}
STAMP=$VENV/.stack

fail() {
    echo "error: $*" >&2
    exit 2
}

# "<major.minor> <version> <executable>" of an interpreter, or nothing
describe() {
    "$1" -c 'import sys; v = sys.version_info; print("%d.%d %d.%d.%d %s" % (v[0], v[1], v[0], v[1], v[2], sys.executable))' 2>/dev/null
}

stack_of() {  # major.minor -> theano | pytensor | old
    case "$1" in
        3.9|3.10|3.11) echo theano ;;
        3.[0-8]|2.*) echo old ;;
        *) echo pytensor ;;
    esac
}

in_pyenv() {  # each pattern's matches in pyenv's versions, newest first
    root=$(pyenv root 2>/dev/null) || return 0
    for name in "$@"; do
        ls -r "$root"/versions/*/bin/$name 2>/dev/null
    done
}

candidates() {  # every python3.X on PATH and in pyenv's versions, once
    for dir in $(echo "$PATH" | tr ':' ' '); do
        ls "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9] 2>/dev/null
    done
    in_pyenv 'python3.[0-9]' 'python3.[0-9][0-9]'
    command -v python3 2>/dev/null
}

problem() {  # why the interpreter described by "$@" cannot be used, or nothing
    minor=$1 version=$2 python=$3
    if [ "$(stack_of "$minor")" = old ]; then
        echo "Python $version ($python) is too old: the tutorial needs Python 3.9 to 3.11 (Theano-PyMC) or 3.12 and newer (PyTensor)"
    elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        echo "Python $version ($python) cannot make a virtual environment: install its venv module (Debian/Ubuntu: sudo apt install python$minor-venv)"
    elif ! "$python" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null; then
        echo "Python $version ($python) has no C headers (Python.h), which the stack compiles its C code against: install them (Debian/Ubuntu: sudo apt install python$minor-dev)"
    fi
}

kept_choice() {  # the description of the Python $VENV/ was made with, if it still serves
    [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] || return 0
    made_with=$(sed -n 1p "$STAMP" | cut -d' ' -f1)
    [ -n "$made_with" ] || return 0
    desc=$(describe "$made_with")
    [ -n "$desc" ] && [ -z "$(problem $desc)" ] || return 0
    [ -z "$WANT" ] || [ "$(stack_of "${desc%% *}")" = "$WANT" ] || return 0
    echo "$desc"
}

newer() {  # is major.minor $1 newer than the one that starts description $2?
    [ -z "$2" ] || [ "$(echo "$1" | cut -d. -f2)" -gt \
                     "$(echo "$2" | cut -d' ' -f1 | cut -d. -f2)" ]
}

choose() {  # the description of the interpreter to use, or fail
    best_theano=''
    best_pytensor=''
    first_problem=''
    for python in $(candidates); do
        d=$(describe "$python")
        [ -n "$d" ] || continue  # does not run (a pyenv shim, say)
        why=$(problem $d)
        if [ -n "$why" ]; then
            first_problem=${first_problem:-$why}
            continue
        fi
        set -- $d
        [ -z "$WANT" ] || [ "$(stack_of "$1")" = "$WANT" ] || continue
        case $(stack_of "$1") in
            theano) if newer "$1" "$best_theano"; then best_theano=$d; fi ;;
            pytensor) if newer "$1" "$best_pytensor"; then best_pytensor=$d; fi ;;
        esac
    done
    if [ -n "$best_theano" ]; then echo "$best_theano"
    elif [ -n "$best_pytensor" ]; then echo "$best_pytensor"
    elif [ -n "$first_problem" ]; then fail "$first_problem"
    elif [ -n "$WANT" ]; then fail "no Python for CA_BACKEND=$WANT found (Theano-PyMC: Python 3.9 to 3.11; PyTensor: 3.12 and newer)"
    else fail "no Python 3.9 or newer found: install Python 3.11 (Debian/Ubuntu: sudo apt install python3.11-venv python3.11-dev) for the Theano-PyMC stack, or 3.12 or newer (python3-venv python3-dev) for PyTensor; or name one with make PYTHON=/path/to/python"
    fi
}

which_only=''
if [ "${1:-}" = --which ]; then
    which_only=yes
    shift
fi
if [ -z "$which_only" ]; then
    # .venv/ and every output go inside the clone
    [ -w . ] || fail "this folder ($(pwd)) cannot be written (a read-only file system, or not yours): $VENV/ and the outputs go inside it; clone the repository to a folder you can write and run make there"
    # the lock file is opened for writing: never through a link
    [ ! -L "$VENV.lock" ] || fail "$VENV.lock is a symbolic link: make never writes through one; remove it and run make again"
fi
if [ -z "$which_only" ] && command -v flock >/dev/null 2>&1; then
    # one make at a time sets up $VENV/; the lock goes with the process
    exec 9>"$VENV.lock"
    if ! flock -n 9; then
        echo "another make is setting up $VENV/ in this folder: waiting for it to finish"
        flock 9
    fi
fi
kept=''
if [ -n "${1:-}" ]; then
    command -v "$1" >/dev/null 2>&1 || \
        fail "PYTHON=$1 is not a program on PATH or a path to one: give a Python 3.9 to 3.11 (Theano-PyMC) or 3.12 and newer (PyTensor), or leave PYTHON unset to pick one"
    d=$(describe "$1")
    if [ -z "$d" ] && [ "${1#*/}" = "$1" ]; then
        # a name that pyenv's shim will not run: the same name in one of
        # pyenv's versions (make run PYTHON=python3.13 where 3.11 is selected)
        for python in $(in_pyenv "$1"); do
            d=$(describe "$python") && [ -n "$d" ] && break
        done
    fi
    [ -n "$d" ] || \
        fail "PYTHON=$1 does not run (try \`$1 --version\`; a pyenv shim runs only the versions pyenv selects): give a working Python 3.9 or newer"
    why=$(problem $d)
    [ -z "$why" ] || fail "$why"
else
    d=$(kept_choice)
    if [ -n "$d" ]; then
        kept=" (the Python $VENV/ was made with; make PYTHON=... picks another)"
    else
        d=$(choose) || exit 2
    fi
fi
set -- $d
minor=$1 version=$2 python=$3
stack=$(stack_of "$minor")
[ -z "$WANT" ] || [ "$stack" = "$WANT" ] || \
    fail "CA_BACKEND=$WANT, but Python $version runs the other stack"
command -v gcc >/dev/null 2>&1 || \
    fail "no C compiler: the stack compiles C code for speed; install gcc and g++ (Debian/Ubuntu: sudo apt install build-essential)"

# the interpreter as the lines below show it: under the home folder, ~/...
shown=$python
home=${HOME:-}
if [ -n "$home" ]; then
    case $python in "$home"/*) shown="~/${python#"$home"/}" ;; esac
fi
case $stack in
    theano) title='Theano-PyMC' ;;
    pytensor) title='PyTensor' ;;
esac
choice="$python $version $stack"
if [ -n "$which_only" ]; then
    echo "$choice"
    exit 0
fi
config=$(cat setup.cfg pyproject.toml tools/build_backend.py | cksum)
if [ -f "$STAMP" ] && [ "$(sed -n 1p "$STAMP")" = "$choice" ] && \
   [ -x "$VENV/bin/python" ]; then
    case $stack in theano) package=theano ;; *) package=pytensor ;; esac
    # from / (so that the checkout's own folders do not count as
    # installed), hence the venv's python by its absolute path
    case $VENV in /*) venv_python=$VENV/bin/python ;; *) venv_python=$(pwd)/$VENV/bin/python ;; esac
    if ! (cd / && "$venv_python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))' \
            "$package" numpy PIL pytest nbclient cA machinery.stack_hook) 2>/dev/null; then
        echo "Python $version ($shown) with the $title stack: $VENV/ lacks the stack or a package it needs (removed since?): installing them again"
    elif [ "$(sed -n 2p "$STAMP")" = "$config" ]; then
        echo "Python $version ($shown) with the $title stack: $VENV/ is ready$kept"
        exit 0
    else
        echo "Python $version ($shown) with the $title stack: setup.cfg, pyproject.toml or tools/build_backend.py changed, updating $VENV/"
    fi
else
    if [ -d "$VENV" ]; then
        before=$(sed -n 1p "$STAMP" 2>/dev/null | cut -d' ' -f2,3)
        echo "Python $version ($shown) with the $title stack: rebuilding $VENV/, replacing the one made for ${before:-another Python or left unfinished}"
        rm -rf "$VENV"
    else
        echo "Python $version ($shown) with the $title stack: setting up $VENV/ (a few minutes the first time)"
    fi
    "$python" -m venv "$VENV" || fail "could not create $VENV/ with $python"
fi
rm -f "$STAMP"
# this checkout, editable: its modules import from any folder, and its
# .pth file configures the stack for a program that imports it first
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e ".[test]" || \
    fail "pip could not install this checkout and the $title stack into $VENV/ (see pip's message above); run make again once it is fixed"
printf '%s\n%s\n' "$choice" "$config" > "$STAMP"
echo "$VENV/ is ready: $("$VENV/bin/python" -c 'from machinery import backend; print(backend.NAME)' 2>/dev/null || echo "$title")"
