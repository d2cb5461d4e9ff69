"""What keeps the tutorial scripts safe and fast, kept out of their way.

The scripts at the top of the repository (cA.py, logistic_sgd.py, mlp.py,
utils.py, ScA.py) are the tutorial, and paper/ the paper's experiments:
read them first. They import what they need from here; nothing here is
needed to understand the method, and nothing here shapes their code.

    stack         which stack runs the code (Theano-PyMC or PyTensor) and
                  its flags, decided before it is imported
    stack_hook    those flags for a program that imports the stack before
                  any module of ours (an installed copy's .pth file)
    backend       the stack, imported with those flags, and the names the
                  scripts import (theano, T, ...)
    kernel/       the training step of the stock cA as one compiled Op, and
                  the check that lets it take over from the class's graph
    training      the safety of cA.test_cA's run (one run per output
                  folder, checkpoints, resume, signals, divergence)
    commands      every script's command line
    reports       JSON reports, the dataset's sha256, time left
    cli           what the command lines share: flags, one-line errors
    shell         quoting a path for a command a user pastes back
    checks        the checks of every setting
    resources     what a run needs of the machine (memory), checked first
    outputs       atomic writes, folder locks, free space, outputs staged
                  and replaced together, no write through a link
    checkpoints   the checkpoint file and its cost history, read without
                  trusting them
    npz_files     reading back an .npz file (a checkpoint, a model) with
                  its cost bounded before any data is read
    mnist_data    getting MNIST into data/, or an installed copy's folder
                  (python -m machinery.mnist_data)
    mnist_file    reading and checking a dataset file
    mnist_idx     the IDX format of the original MNIST files
    array_pickle  the restricted unpickler: arrays only, no code

Importing this package loads nothing: each module is imported on its own.
"""
import os
import signal
import sys


def start_script(path):
    """What a script run from the command line does first, before the
    stack loads: until its command line runs (cli.main), Ctrl-C ends the
    process at once, without a traceback (nothing is written while the
    modules load); and --help is answered at once, from the script's
    source (commands.help_from_source), without loading the stack."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if {'-h', '--help'} & set(sys.argv[1:]) and \
            os.path.basename(path) != 'mnist_data.py':
        from . import commands
        code = commands.help_from_source(path)
        if code is not None:
            sys.exit(code)
