"Classifier feedback (`classifier_loss` α): the CLI option, study files, resume, and that the feedback does what it says."
import pytest, torch, torch.nn.functional as F, yaml
from conftest import TINY, cli
from fastgan_study.core import FastGANError
from fastgan_study.learner import tiny_gan_learner, train
from fastgan_study.domain import feedback_classifier, domain_classifier, classifier_hash
from fastgan_study.study import parse_study, check_study

pytestmark = pytest.mark.usefixtures('one_thread')
COND = [a for a in TINY if a not in ('--classes', '7')]          # every class: a conditional run needs them

def test_cli_trains_with_feedback_and_refuses_an_unconditional_recipe(tmp_path):
    r = cli('train', *COND, '--recipe', 'cdcgan', '--classifier-loss', '2', '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())
    assert (cfg['classifier_loss'], cfg['arch'], cfg['status']) == (2.0, 'cdcgan', 'done')
    r = cli('train', *COND, '--classifier-loss', '1', '--out', tmp_path/'bad')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and '--recipe cdcgan or acgan' in r.stderr, r.stderr
    assert not (tmp_path/'bad').exists()
    r = cli('train', *COND, '--recipe', 'cdcgan', '--classifier-loss', '-1', '--out', tmp_path/'neg')
    assert r.returncode == 2 and 'classifier_loss must be a number from 0' in r.stderr, r.stderr
    r = cli('train', *COND, '--recipe', 'cdcgan', '--classifier-loss', '1', '--epochs', '3', '--out', tmp_path/'run', '--resume')
    assert r.returncode == 2 and "classifier_loss 2.0 (now 1.0)" in r.stderr, r.stderr   # a resumed run repeats its α

def test_study_files_take_it_and_check_it(tmp_path):
    base = dict(data='digits', size=16, recipe='cdcgan', epochs=1, n_features=8, bs=16)
    s = parse_study(dict(base=base, grid=dict(classifier_loss=[0, '0.5'])), 'classifier.yaml')
    assert s['grid']['classifier_loss'] == [0., 0.5]
    check_study(s)                                                  # builds each cell's learner: trains no classifier
    lines = {('grid', 'classifier_loss'): 3}
    bad = parse_study(dict(base=dict(base, recipe='dcgan'), grid=dict(classifier_loss=[0, 1])), 'classifier.yaml', lines)
    with pytest.raises(FastGANError, match=r"classifier.yaml, line 3: cell classifier_loss=1: .*not conditional"): check_study(bad, lines, 'classifier.yaml')

def _feedback_ce(learn, n=200):
    "The fixed classifier's cross-entropy of `n` samples against the classes they were asked for."
    y = torch.arange(n) % 10
    with torch.no_grad(): return float(F.cross_entropy(feedback_classifier(learn.dls.images)(learn.sample(n, seed=0, labels=y) * 2 - 1), y))

def test_feedback_moves_the_generator_towards_the_classes_asked_for():
    "The same seeded run with α = 0 and α = 5: the feedback lowers the classifier's cross-entropy on the generated images, and it trains only the generator."
    ce = {}
    for a in (0., 5.):
        torch.manual_seed(0); learn = tiny_gan_learner('cdcgan', classifier_loss=a)
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        ce[a] = _feedback_ce(learn)
        if a: assert classifier_hash(learn.loss_func.classifier.net) == classifier_hash(feedback_classifier(learn.dls.images).net)
    assert ce[5.] < 0.5 * ce[0.], ce
    assert classifier_hash(feedback_classifier(learn.dls.images).net) != domain_classifier(learn.dls.images).card['weights']   # scored by another network
