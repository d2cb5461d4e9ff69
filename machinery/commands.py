"""Every script's command line: cA.py, logistic_sgd.py, ScA.py, and the
paper's paper/analysis.py and paper/table1.py.

Each script ends with one call, ``commands.<script>(its functions)``; the
flags here take their defaults
from those functions' keywords (one place for each default,
cli.parser_for), every flag has its help, and cli.main turns a user's
mistake into one ``error:`` line. Nothing here imports the stack:
``help_from_source`` answers ``--help`` from a script's source, before the
stack loads (machinery.start_script calls it).
"""
import os

from . import checks
from . import cli
from .kernel import GRADIENTS


# ---- cA.py ------------------------------------------------------------------

def cA_parser(test_cA):
    """The parser of cA.py; the defaults come from test_cA's keywords."""
    parser = cli.parser_for(test_cA, 'Train a contractive auto-encoder on '
                                     'MNIST and write its filters as a PNG.')
    cli.add(parser, '--learning-rate', type=float)
    cli.add(parser, '--epochs', 'training_epochs', type=int,
            help='passes over the training set (default: %(default)s)')
    cli.add(parser, '--dataset')
    cli.add(parser, '--batch-size', type=int)
    cli.add(parser, '--output-folder',
            help='where cae_filters.png and the checkpoint are written; one '
                 'run at a time per folder (default: %(default)s)')
    cli.add(parser, '--contraction-level', type=float)
    cli.add(parser, '--n-hidden', type=int,
            help='hidden units (default: %(default)s)')
    cli.add(parser, '--seed', type=int)
    cli.add(parser, '--gradient', choices=GRADIENTS,
            help=cli.HELP['gradient'])
    cli.add(parser, '--resume', action='store_true',
            help='go on from the checkpoint in the output folder (same '
                 'settings and data); a larger --epochs trains on')
    cli.add(parser, '--restart', action='store_true',
            help='start over even though the output folder holds an '
                 'unfinished checkpoint (it is replaced)')
    return parser


def cA(test_cA, argv=None):
    """cA.py's command line: parse argv, train, and return the exit code;
    an interrupted run prints how to resume it."""
    return cli.main(test_cA, cA_parser(test_cA), argv,
                    resume_flag='--resume')


# ---- logistic_sgd.py ------------------------------------------------------

def logistic_sgd(sgd_optimization_mnist, train_or_predict, argv=None):
    """logistic_sgd.py's command line: train, or --predict."""
    return cli.main(train_or_predict, logistic_sgd_parser(
        sgd_optimization_mnist), argv)


def logistic_sgd_parser(sgd_optimization_mnist):
    """The parser of logistic_sgd.py."""
    parser = cli.parser_for(sgd_optimization_mnist,
                            'Logistic regression on raw MNIST pixels, with '
                            'early stopping on the validation set.')
    cli.add(parser, '--learning-rate', type=float)
    cli.add(parser, '--epochs', 'n_epochs', type=int,
            help='most epochs to train (default: %(default)s)')
    cli.add(parser, '--batch-size', type=int)
    cli.add(parser, '--dataset')
    cli.add(parser, '--model-path',
            help='where the best model is written, or read by --predict '
                 '(default: %(default)s)')
    parser.add_argument('--predict', dest='predict_only',
                        action='store_true',
                        help='do not train: print what the saved model '
                             'predicts for the first 10 test digits, beside '
                             'their true labels')
    return parser


# ---- ScA.py and paper/table1.py ---------------------------------------------

def add_stacked_flags(parser):
    """The flags of test_ScA's settings, which paper/table1.py shares."""
    cli.add(parser, '--pretraining-epochs', type=int,
            help='auto-encoder training epochs of each layer (default: '
                 '%(default)s)')
    cli.add(parser, '--pretrain-lr', type=float,
            help='SGD step size of the pre-training (default: %(default)s)')
    cli.add(parser, '--pretrain-batch-size', type=int,
            help='examples per minibatch of the pre-training (default: '
                 '%(default)s)')
    cli.add(parser, '--contraction-level', type=float,
            help='lambda, the weight of the Jacobian penalty in '
                 'pre-training; 0 pre-trains plain auto-encoders (default: '
                 '%(default)s)')
    cli.add(parser, '--finetune-lr', type=float,
            help='SGD step size of the first fine-tuning epoch (default: '
                 '%(default)s)')
    cli.add(parser, '--finetune-lr-decay', type=float,
            help='the fine-tuning step size is multiplied by this after '
                 'every epoch, 0 < d <= 1 (default: %(default)s)')
    cli.add(parser, '--finetune-epochs', 'training_epochs', type=int,
            help='the fine-tuning budget: most epochs (early stopping on the '
                 'validation set may stop sooner) (default: %(default)s)')
    cli.add(parser, '--finetune-batch-size', type=int,
            help='examples per minibatch of the fine-tuning (default: '
                 '%(default)s)')
    cli.add(parser, '--seed', type=int,
            help='seed of the initial weights, the same whatever the '
                 'pre-training, 0 to %d (default: %%(default)s)'
                 % (checks.SEED_LIMIT - 1))
    cli.add(parser, '--shuffle-seed', type=int,
            help='seed of the order of the training examples, drawn anew '
                 'every epoch, the same for every model, 0 to %d (default: '
                 '%%(default)s)' % (checks.SEED_LIMIT - 1))
    cli.add(parser, '--gradient', choices=GRADIENTS)
    cli.add(parser, '--dataset')


def scA_parser(test_ScA):
    """The parser of ScA.py; every default comes from test_ScA's
    signature (cli.parser_for)."""
    parser = cli.parser_for(
        test_ScA, 'Stacked contractive auto-encoders on MNIST: pre-train an '
        'MLP layer by layer as CAEs, fine-tune it, keep the epoch of the '
        'best validation error and score it once on the test set.')
    cli.add(parser, '--no-pretrain', 'pretrain', action='store_false',
            help='skip pre-training: fine-tune from the random '
                 'initialisation')
    add_stacked_flags(parser)
    cli.add(parser, '--hidden-layers-sizes', type=int, nargs='+',
            metavar='N',
            help='the hidden layer sizes, bottom first (default: '
                 '%(default)s)')
    return parser


def scA(test_ScA, argv=None):
    """ScA.py's command line: test_ScA() for one model."""
    return cli.main(test_ScA, scA_parser(test_ScA), argv)


def table1_parser(compare, test_ScA):
    """The parser of paper/table1.py; the defaults come from compare's
    keywords, and those of the rows' settings from test_ScA's."""
    parser = cli.parser_for(
        dict(cli.defaults_of(test_ScA), **cli.defaults_of(compare)),
        'The paper\'s Table 1 on MNIST: random initialisation, '
        'plain auto-encoder (lambda 0) and CAE pre-training of the same '
        '784-N-10 MLP (ScA.py), with intervals, paired tests and the '
        'contraction curves of the pre-trained layers.')
    add_stacked_flags(parser)
    cli.add(parser, '--n-hidden', type=int,
            help='the units of the hidden layer (default: %(default)s)')
    cli.add(parser, '--two-layers', action='store_true',
            help='add a row for a stack of two such layers, CAE-pre-trained '
                 '(two pre-trainings: the longest row)')
    cli.add(parser, '--output-folder',
            help='where the table\'s JSON and its contraction figure are '
                 'written (default: %(default)s)')
    return parser


def table1(compare, test_ScA, argv=None):
    """paper/table1.py's command line."""
    return cli.main(compare, table1_parser(compare, test_ScA), argv)


# ---- paper/analysis.py ------------------------------------------------------

def analysis_parser(run_analysis):
    """The parser of paper/analysis.py; every default comes from
    run_analysis's signature (cli.parser_for)."""
    parser = cli.parser_for(
        run_analysis, 'Train a contractive auto-encoder and a plain '
        'auto-encoder identically on MNIST (the same data order, --seed and '
        'settings), then write the paper\'s analyses: the Jacobian\'s '
        'spectrum, contraction curves (random directions drawn from '
        '--seed too), ||J||_F, saturation and the code as features for a '
        'logistic regression (figures and analysis.json).')
    cli.add(parser, '--epochs', 'training_epochs', type=int,
            help='training epochs of each auto-encoder (default: '
                 '%(default)s)')
    cli.add(parser, '--n-examples', type=int,
            help='test digits for the spectrum and the contraction curves '
                 '(the first ones of the test set; at least 2) (default: '
                 '%(default)s)')
    cli.add(parser, '--dataset')
    cli.add(parser, '--output-folder',
            help='where the figures and analysis.json are written, and the '
                 'two trainings (cae/, ae/); one run at a time per folder '
                 '(default: %(default)s)')
    cli.add(parser, '--contraction-level', type=float,
            help="the CAE's lambda, > 0 (the plain auto-encoder has 0) "
                 "(default: %(default)s)")
    cli.add(parser, '--n-hidden', type=int,
            help='hidden units of each auto-encoder (default: %(default)s)')
    # two SGDs here: these two set the auto-encoders', --classifier-* the
    # logistic regressions'
    cli.add(parser, '--learning-rate', type=float,
            help='SGD step size of the auto-encoders (default: '
                 '%(default)s)')
    cli.add(parser, '--batch-size', type=int,
            help='examples per minibatch of the auto-encoders (default: '
                 '%(default)s)')
    cli.add(parser, '--seed', type=int)
    cli.add(parser, '--n-radii', type=int,
            help='radii of the contraction curves: the limit r -> 0, then '
                 'the others evenly spaced (default: %(default)s)')
    cli.add(parser, '--min-radius-factor', type=float,
            help='the first radius (the limit r -> 0), as a multiple of the '
                 'median distance from a test digit to its nearest training '
                 'digit, below 1 (default: %(default)s)')
    cli.add(parser, '--max-radius-factor', type=float,
            help='the largest radius, as a multiple of the largest distance '
                 'between two training digits (default: %(default)s)')
    cli.add(parser, '--saturation-threshold', type=float,
            help='a unit is saturated when h < t or h > 1 - t; 0 < t < 0.5 '
                 '(default: %(default)s)')
    cli.add(parser, '--classifier-epochs', type=int,
            help='most epochs of each logistic regression (it stops early on '
                 'the validation set) (default: %(default)s)')
    cli.add(parser, '--classifier-learning-rate', type=float,
            help='SGD step size of the logistic regressions (default: '
                 '%(default)s)')
    cli.add(parser, '--classifier-batch-size', type=int,
            help='minibatch size of the logistic regressions (default: '
                 '%(default)s)')
    cli.add(parser, '--verbose', action='store_true',
            help="also print the logistic regressions' own progress (a line "
                 "per look at the validation set)")
    cli.add(parser, '--resume', action='store_true',
            help='go on with the trainings an interrupted analysis left '
                 'unfinished in cae/ and ae/ (same settings and data)')
    cli.add(parser, '--restart', action='store_true',
            help='start the trainings over even though cae/ or ae/ holds '
                 'an unfinished checkpoint (it is replaced)')
    return parser


def analysis(run_analysis, argv=None):
    """paper/analysis.py's command line."""
    return cli.main(run_analysis, analysis_parser(run_analysis), argv,
                    resume_flag='--resume')


# ---- --help, before the stack loads -----------------------------------------

# each script's parser, and the functions whose keywords are its defaults
PARSERS = {'cA.py': (cA_parser, ['test_cA']),
           'logistic_sgd.py': (logistic_sgd_parser,
                               ['sgd_optimization_mnist']),
           'ScA.py': (scA_parser, ['test_ScA']),
           'analysis.py': (analysis_parser, ['run_analysis']),
           'table1.py': (table1_parser, ['compare', '../ScA.py:test_ScA'])}


def help_from_source(script):
    """Print the --help of the script at path ``script``, with the
    defaults read from its source (cli.defaults_in_source): the same text
    as its parser built from the loaded functions, without loading the
    stack. Returns the exit code, 0; None for a script of another name (a
    renamed copy), whose --help its own parser answers once loaded."""
    if os.path.basename(script) not in PARSERS:
        return None
    make_parser, names = PARSERS[os.path.basename(script)]
    # 'name', or 'path:name' for a function of another script (the path
    # relative to this one's folder)
    sources = [name.split(':') if ':' in name else (script, name)
               for name in names]
    parser = make_parser(*[cli.defaults_in_source(
        os.path.join(os.path.dirname(script), path) if path != script
        else script, name) for path, name in sources])
    parser.prog = os.path.basename(script)
    parser.print_help()
    return 0
