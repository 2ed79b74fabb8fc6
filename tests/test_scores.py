"Every closing-score kind by name: through `train` (Python and CLI spelling), through a study, refused up front when the run or study cannot have it, and shown in the report."
import functools, os, re, warnings
from pathlib import Path
import pandas as pd, pytest, torch
from fastgan_study.core import FastGANError, load_yaml
from fastgan_study import learner as L, metrics as M, study as S
from fastgan_study.memorisation import PixelFeatures
from fastgan_study.runs import read_metrics, read_scores, read_references, read_config
from fastgan_study.synthetic import save_split

pytestmark = pytest.mark.usefixtures('one_thread')
TINY = dict(size=16, epochs=2, n_features=8, bs=32, progress=False)

@pytest.fixture(scope='module')
def split(tmp_path_factory):
    "digits split once into a training pool (1,497) and a held-out test split (300): data memorisation can be scored on."
    return save_split(tmp_path_factory.mktemp('data')/'digits_split.npz', 'digits', n_test=300)

@pytest.fixture
def fast_fid(monkeypatch):
    "`measure` on 4×4 pooled pixels (16 dims) in place of Inception: the same code path as Inception FID, seconds on a CPU."
    monkeypatch.setattr(L, 'measure', functools.partial(M.measure, extractor=PixelFeatures(4)))
    monkeypatch.setitem(S.SCORE_DIMS, 'fid_spread', 16)                                # the study's check counts its dimensions

def test_score_kinds_read_one_several_or_a_list():
    assert L.score_kinds('domain, memorisation') == ['domain', 'memorisation'] == L.score_kinds(['domain', 'memorisation', 'domain'])
    assert L.score_kinds('none') == [] and L.score_kinds([]) == []
    with pytest.raises(FastGANError, match="did you mean 'memorisation'"): L.score_kinds('domain,memorization')
    with pytest.raises(FastGANError, match='give it alone'): L.score_kinds('none,fid')
    assert L.RunFolder(score=['collapse', 'domain']).score == 'collapse,domain'         # config.yaml's one spelling

def test_memorisation_and_collapse_through_train(split, tmp_path):
    "memorisation: the fraction, its figure in the folder and the report; collapse: fd_prev and diversity per epoch in metrics.csv, the last fd_prev as the score."
    out = tmp_path/'run'
    learn = L.train(split, score='domain,memorisation,collapse', n_score=128, out=out, **TINY)
    s, m = read_scores(out), read_metrics(out)
    assert {'domain_fd', 'memorised', 'collapse'} <= set(s) and 0 <= s['memorised'].value <= 1
    assert s['memorised'].card['test_count'] == 300 and s['memorised'].card['fake_count'] == 128 and s['memorised'].card['real_count'] == 1497
    assert list(m.columns[-2:]) == ['fd_prev', 'diversity'] and len(m) == 2 and (m.fd_prev > 0).all()
    assert s['collapse'].value == pytest.approx(m.fd_prev.iloc[-1]) and s['collapse'].card['epoch'] == 2 and s['collapse'].card['fake_count'] == 128
    refs = read_references(out)
    assert set(refs) == {'untrained generator', 'real vs real'} and all('memorised' in r and 'collapse' not in r for r in refs.values())
    assert refs['real vs real']['memorised'].value < 0.2, 'held real images are not copies: about the 5% quantile'
    assert (out/'memorisation.png').stat().st_size > 5000 and read_config(out)['score'] == 'domain,memorisation,collapse'
    page = (out/'report.html').read_text()
    assert 'alt="Memorisation: the generated images nearest' in page and 'fd_prev (collapse)' in page and '>memorised<' in page

def test_fid_spread_through_train(split, tmp_path, fast_fid):
    "fid_spread: the std of FID over SPREAD_DRAWS draws of N images of the final generator; the card gives draws, N, the mean and the relative std."
    learn = L.train(split, score=['fid', 'fid_spread'], n_score=64, out=tmp_path/'run', report=False, **TINY)
    f, sp = learn.scores['fid'], learn.scores['fid_spread']
    assert sp.card['draws'] == L.SPREAD_DRAWS and sp.card['fake_count'] == 64 and sp.card['spread'] == 'draws' and sp.std is None
    assert 0 < sp.value < sp.card['mean'] and sp.card['rel_std'] == pytest.approx(sp.value / sp.card['mean'], rel=1e-3)
    assert f.card['draws'] == 1 and sp.card['mean'] != f.value
    assert set(read_references(tmp_path/'run')['real vs real']) == {'fid'}, 'a spread has no reference'

def test_domain_spread_through_train(split, tmp_path):
    s = L.train(split, score='domain_spread', n_score=200, out=tmp_path/'run', report=False, **TINY).scores['domain_spread']
    assert s.name.startswith('FD[lenet-') and s.card['dims'] == 128 and s.card['draws'] == L.SPREAD_DRAWS and s.value > 0

@pytest.fixture
def logits_weights(tmp_path, monkeypatch):
    "A pytorch-fid .pth of the fid-helper convolutions with a random nonzero logits layer, as $FASTGAN_INCEPTION_WEIGHTS."
    sd, _ = M.load_inception_state_dict(M.find_inception_weights())
    g = torch.Generator().manual_seed(0)
    sd['fc.weight'], sd['fc.bias'] = torch.randn(sd['fc.weight'].shape, generator=g) * 0.05, torch.zeros_like(sd['fc.bias'])
    f = tmp_path/'inception_with_fc.pth'; torch.save(sd, f)
    monkeypatch.setenv(M.WEIGHTS_ENV, str(f))
    return f

def test_is_is_refused_without_logits_before_training(tmp_path, monkeypatch):
    monkeypatch.delenv(M.WEIGHTS_ENV, raising=False)
    if L.inception_logits(): pytest.skip('this machine has Inception weights with logits')
    with pytest.raises(FastGANError, match=r'score is \(the Inception Score\) needs Inception weights with a logits layer'):
        L.train('digits', score='domain,is', out=tmp_path/'run', **TINY)
    assert not (tmp_path/'run').exists(), 'refused before a folder is made'

def test_is_through_train_with_logits(tmp_path, logits_weights):
    "is: the Inception Score of the generated images, ± over splits, beside its references; 24 images so that Inception runs in seconds."
    data = tmp_path/'small.npz'; save_split(data, 'digits', n_test=1773)            # 24 training images, the rest held out
    learn = L.train(data, score='is', out=tmp_path/'run', size=16, epochs=1, n_features=8, bs=8, progress=False, report=False)
    s = learn.scores['is']
    assert s.name == 'IS' and 1 <= s.value <= 1008 and s.card['spread'] == 'splits' and s.card['fake_count'] == 24
    assert all('is' in r for r in read_references(tmp_path/'run').values())

@pytest.mark.parametrize('data, message', [
    ('digits', "digits (scikit-learn's 1,797 images, all trained on) has no test split"),
    ('{x_only}', 'has no x_test beside x_train'),
    ('{flat}', 'has no train/ and test/ subfolders'),
])
def test_memorisation_without_held_out_images_is_refused_before_training(tmp_path, data, message):
    import numpy as np
    from PIL import Image
    np.savez(tmp_path/'x_only.npz', x=np.zeros((20, 16, 16), np.uint8))
    (tmp_path/'flat').mkdir(); [Image.new('L', (16, 16), i).save(tmp_path/'flat'/f'{i}.png') for i in range(20)]
    data = data.format(x_only=tmp_path/'x_only.npz', flat=tmp_path/'flat')
    with pytest.raises(FastGANError) as e: L.train(data, score='memorisation', out=tmp_path/'run', **TINY)
    assert message in str(e.value) and 'synthetic.save_split' in str(e.value) and '\n' not in str(e.value)
    assert not (tmp_path/'run').exists()

def test_cli_takes_several_kinds(split, tmp_path, run_cli):
    r = run_cli('train', '--data', split, '--score', 'memorisation,collapse', '--n-score', '100', '--epochs', '1', '--n-features', '8',
                '--bs', '32', '--out', tmp_path/'run', '--no-progress', '--no-report')
    assert r.returncode == 0, r.stderr
    assert set(read_scores(tmp_path/'run')) == {'memorised', 'collapse'}
    r = run_cli('train', '--score', 'memorisation', '--epochs', '1', '--out', tmp_path/'r2')
    assert r.returncode != 0 and 'no test split' in r.stderr and not (tmp_path/'r2').exists()

STUDY = """name: kinds
base: {data: DATA, size: 16, recipe: dcgan, epochs: 2, n_features: 8, bs: 32}
grid:
  n_score: [64, 128]
seeds: 2
scores: [fid_spread, memorisation, collapse]
compare: none
"""

def test_every_kind_through_a_study(split, tmp_path, fast_fid):
    "A study's scores: the new kinds reach results, summary (with their direction) and the report."
    f = tmp_path/'s.yaml'; f.write_text(STUDY.replace('DATA', str(split)))
    res = S.run_study(f, tmp_path/'study', verbose=False)
    assert (res.status == 'done').all(), res.error.tolist()
    summ = pd.read_csv(tmp_path/'study'/'summary.csv')
    assert dict(zip(summ.score, summ.better)) == {'fid_spread': 'lower', 'memorised': 'lower', 'collapse': 'lower'}
    assert sorted(load_yaml(tmp_path/'study'/'trials'/t/'scores.yaml')['fid_spread']['fake_count'] for t in res.trial) == [64, 64, 128, 128]
    page = (tmp_path/'study'/'report.html').read_text()
    assert '<h3>fid_spread (lower is better)</h3>' in page and 'rel_std' in page and '<h3>memorised (lower is better)</h3>' in page

@pytest.mark.parametrize('edit, message', [
    (lambda t: t.replace('[fid_spread, memorisation, collapse]', '[memorisation]').replace('DATA', 'digits'),
     r"s.yaml, line 6: cell n_score=64: scores: memorisation needs held-out real images: digits .* has no test split"),
    (lambda t: t.replace('[fid_spread, memorisation, collapse]', '[collapse]').replace('DATA', 'digits'),
     r"s.yaml, line 6: cell n_score=32: scores: collapse compares batches of 32 images .* give n_score 64 or more"),
    (lambda t: t.replace('[fid_spread, memorisation, collapse]', '[fid_spread]').replace('DATA', 'digits'),
     r"s.yaml, line 6: cell n_score=64: scores: fid_spread is a Fréchet distance on 2048 feature dimensions"),
    (lambda t: t.replace('[fid_spread, memorisation, collapse]', '[is]').replace('DATA', 'digits'),
     r"s.yaml, line 6: cell n_score=64: scores: is \(the Inception Score\) needs Inception weights with a logits layer"),
    (lambda t: t.replace('[fid_spread, memorisation, collapse]', '[domain_spread]').replace('DATA', 'digits').replace('data: digits', 'data: digits, classes: 7'),
     r"s.yaml, line 6: cell n_score=64: scores: domain_spread needs labelled data"),
])
def test_a_study_is_refused_up_front_when_a_score_cannot_be_met(tmp_path, edit, message, monkeypatch):
    "Before any trial trains (and in --dry-run): no trial folder is written."
    monkeypatch.delenv(M.WEIGHTS_ENV, raising=False)
    if 'is' in message and L.inception_logits(): pytest.skip('this machine has Inception weights with logits')
    f = tmp_path/'s.yaml'; f.write_text(edit(STUDY).replace('[64, 128]', '[32, 128]' if 'collapse' in message else '[64, 128]'))
    for dry in (True, False):
        with pytest.raises(FastGANError) as e, warnings.catch_warnings():
            warnings.simplefilter('ignore'); S.run_study(f, tmp_path/'study', dry_run=dry, verbose=False)
        assert re.search(message, str(e.value)) and '\n' not in str(e.value), str(e.value)
    assert not (tmp_path/'study'/'trials').exists()

def test_collapse_batch_smaller_than_its_features_is_refused_before_the_folder(tmp_path):
    with pytest.raises(FastGANError, match=r'give --n-score 64 or more') as e: L.train(score='collapse', n_score=32, out=tmp_path/'run', **TINY)
    assert len(str(e.value).splitlines()) == 1 and not (tmp_path/'run').exists()

def test_resume_from_an_older_config_and_with_other_closing_scores(tmp_path):
    "A config.yaml written before classifier_loss and n_score existed resumes (their defaults are what it meant); asking for other closing scores on resume scores the run with them."
    out = tmp_path/'run'
    L.train(score='none', out=out, **dict(TINY, epochs=1))
    c = load_yaml(out/'config.yaml'); del c['classifier_loss'], c['n_score']
    from fastgan_study.core import save_yaml
    save_yaml(c, out/'config.yaml')
    learn = L.train(score='domain', out=out, resume=True, **TINY)
    assert read_config(out)['status'] == 'done' and 'domain_fd' in read_scores(out) and len(read_metrics(out)) == 2
    with pytest.raises(FastGANError, match=r"score 'domain' \(now 'collapse'\)"): L.train(score='collapse', out=out, resume=True, **dict(TINY, epochs=3))

def test_a_scoring_crash_keeps_the_run_done_and_says_so(tmp_path, monkeypatch):
    "Any error while scoring (not only ours) leaves a trained run done, with score_error in config.yaml, which `run_learner` reads back."
    def boom(*a, **k): raise RuntimeError('CUDA out of memory (simulated)')
    monkeypatch.setattr(L, 'final_scores', boom)
    with pytest.warns(UserWarning, match='saved but was not scored: RuntimeError: CUDA out of memory'): L.train(out=tmp_path/'run', **dict(TINY, epochs=1))
    c = read_config(tmp_path/'run')
    assert c['status'] == 'done' and c['score_error'] == 'RuntimeError: CUDA out of memory (simulated)'
    assert L.run_learner(tmp_path/'run').score_error == c['score_error']
    monkeypatch.undo()
    learn = L.train(out=tmp_path/'run', resume=True, **dict(TINY, epochs=1))   # finished but unscored: scored now, the error gone
    assert 'domain_fd' in read_scores(tmp_path/'run') and 'score_error' not in read_config(tmp_path/'run')
