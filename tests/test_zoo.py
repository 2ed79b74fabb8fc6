"The headline check of the zoo: a conditional DCGAN trained on digits at 16×16 makes the digit it is asked for."
import torch, pytest
from fastgan_study.learner import train
from fastgan_study.domain import domain_scores
from fastgan_study.core import load_yaml


@pytest.fixture(scope='module')
def cdcgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('zoo')/'cdcgan'
    return train('digits', size=16, recipe='cdcgan', epochs=40, bs=64, n_features=32, seed=0, out=out, progress=False, device='cpu')


def test_conditional_dcgan_makes_the_requested_digit(cdcgan_run):
    learn = cdcgan_run
    s = learn.scores                                  # the run's closing domain scores: generated class by class (0, 1, …, 9, 0, …)
    assert s['accuracy'].value >= 0.90, f"conditional accuracy {s['accuracy'].value:.3f}"
    per_class = [s[f'accuracy_{c}'].value for c in range(10)]
    assert min(per_class) >= 0.6, per_class
    assert s['modes'].value == 10


def test_requested_labels_change_the_class(cdcgan_run):
    learn = cdcgan_run
    z_seed = 3
    sevens = domain_scores(learn.dls.images, learn.sample(200, seed=z_seed, labels=torch.full((200,), 7)),
                           labels=torch.full((200,), 7))
    assert sevens['accuracy'].value >= 0.85
    ones = domain_scores(learn.dls.images, learn.sample(200, seed=z_seed, labels=torch.full((200,), 1)),
                         labels=torch.full((200,), 7))
    assert ones['accuracy'].value <= 0.15              # same noise, other label: no longer a seven


def test_conditional_run_config(cdcgan_run):
    cfg = load_yaml(cdcgan_run.path/'config.yaml')
    assert (cfg['arch'], cfg['n_classes'], cfg['status']) == ('cdcgan', 10, 'done')
    assert cfg['generator_params'] > 0 and cfg['critic_params'] > 0
