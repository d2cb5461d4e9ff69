"""machinery/checks.py: the settings a training function refuses."""
import pytest

from machinery import checks
from machinery.checks import ConfigError


@pytest.mark.parametrize('change', [
    {'pretrain_batch_size': 0}, {'finetune_batch_size': 0},
    {'training_epochs': 0}, {'finetune_lr': -1},
    {'finetune_lr_decay': 0}, {'finetune_lr_decay': 1.5},
    {'contraction_level': -0.1}, {'hidden_layers_sizes': []},
    {'hidden_layers_sizes': [10, 0]}, {'pretraining_epochs': -1},
    {'pretrain_lr': float('nan')}, {'seed': -3}, {'seed': 2 ** 32},
    {'shuffle_seed': -1}, {'shuffle_seed': 1.5}, {'shuffle_seed': None},
    {'gradient': 'numeric'}])
def test_stacked_training_refuses(change):
    settings = dict(finetune_lr=0.1, pretraining_epochs=1, pretrain_lr=0.01,
                    contraction_level=0.1, training_epochs=1,
                    pretrain_batch_size=10, finetune_batch_size=20,
                    hidden_layers_sizes=[10], finetune_lr_decay=0.9, seed=0,
                    shuffle_seed=0, gradient='fused')
    checks.stacked_training(**settings)
    settings.update(change)
    with pytest.raises(ConfigError):
        checks.stacked_training(**settings)
