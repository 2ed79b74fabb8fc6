"Reference scores (an untrained generator, real vs real) measured as the run was, cached once per data and protocol; the warnings a run records."
import warnings
import fastai, pytest
from fastgan_study import learner as L
from fastgan_study.core import cache_dir
from fastgan_study.runs import REFERENCES, comparable, read_references, read_scores, read_warnings
from fastgan_study.report import write_report

pytestmark = pytest.mark.usefixtures('one_thread')

def tiny(out, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='You are shadowing an attribute')   # fastai's notices about GANTrainer
        return L.train('digits', size=16, classes='1,7', **{'epochs': 1, 'bs': 16, 'n_features': 8, **kw}, out=out, progress=False, device='cpu')

@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    "An empty cache folder, and a count of every closing-score computation (the run's and its references')."
    monkeypatch.setenv('FASTGAN_STUDY_CACHE', str(tmp_path/'cache'))
    calls, real = [], L.closing_scores
    def counted(*a, **k): calls.append(a[1]); return real(*a, **k)
    monkeypatch.setattr(L, 'closing_scores', counted)
    return calls

def values(refs): return {label: {k: s.value for k, s in r.items()} for label, r in refs.items()}

def test_references_are_measured_as_the_run_and_cached(tmp_path, fresh_cache):
    "The issue's must-show: both reference rows, measured with the run's protocol; a second run on the same data computes none."
    tiny(tmp_path/'a')
    refs, scores = read_references(tmp_path/'a'), read_scores(tmp_path/'a')
    assert list(refs) == list(REFERENCES) and len(fresh_cache) == 3                     # the run, then the two references
    untrained, real = refs['untrained generator'], refs['real vs real']
    assert set(scores) <= set(untrained) and all(comparable(scores[k], untrained[k]) for k in scores)
    assert {k: v for k, v in real['domain_fd'].card.items() if scores['domain_fd'].card[k] != v} == dict(real_count=181, fake_count=180)
    assert real['domain_fd'].value < scores['domain_fd'].value                         # real images are the floor
    files = {f: f.stat().st_mtime_ns for f in (cache_dir()/'references').glob('*.pt')}
    assert len(files) == 2
    learn = tiny(tmp_path/'b')
    assert len(fresh_cache) == 4, 'the second run measured its own scores only'
    assert values(read_references(tmp_path/'b')) == values(refs) == values(learn.references)
    assert {f: f.stat().st_mtime_ns for f in (cache_dir()/'references').glob('*.pt')} == files

def test_other_networks_or_seed_need_their_own_untrained_reference(tmp_path, fresh_cache):
    tiny(tmp_path/'a')
    n = len(fresh_cache)
    tiny(tmp_path/'wider', n_features=16)                                               # same data and protocol: real vs real is reused
    assert len(fresh_cache) == n + 2
    tiny(tmp_path/'seed', seed=7)                                                       # another seed: both measured again
    assert len(fresh_cache) == n + 5
    assert values(read_references(tmp_path/'a'))['untrained generator'] != values(read_references(tmp_path/'wider'))['untrained generator']

def test_a_truncated_cache_file_is_measured_again(tmp_path, fresh_cache):
    tiny(tmp_path/'a')
    for f in (cache_dir()/'references').glob('*.pt'): f.write_bytes(b'truncated')
    tiny(tmp_path/'b')
    assert len(fresh_cache) == 6 and values(read_references(tmp_path/'b')) == values(read_references(tmp_path/'a'))

def test_unscored_run_has_no_references(tmp_path, fresh_cache):
    tiny(tmp_path/'a', score='none')
    assert not (tmp_path/'a'/'references.yaml').exists() and len(fresh_cache) == 1     # the run's own call, which scores nothing

def test_real_vs_real_too_few_images_warns_and_the_run_goes_on(tmp_path, fresh_cache, monkeypatch):
    "Half the real images below the feature dimensions: no real vs real row, a warning saying why, the untrained row kept."
    real = L.closing_scores
    def few(real_imgs, fake, *a, **k):
        if isinstance(fake, L.ImageSet): raise L.FastGANError('the generated set has 180 samples but the features have 256 dimensions')
        return real(real_imgs, fake, *a, **k)
    monkeypatch.setattr(L, 'closing_scores', few)
    with pytest.warns(UserWarning, match="no 'real vs real' reference for the closing scores: the generated set has 180 samples"):
        tiny(tmp_path/'a')
    assert list(read_references(tmp_path/'a')) == ['untrained generator']
    assert any('real vs real' in w['message'] for w in read_warnings(tmp_path/'a'))

# --- the warnings a run shows

def test_domain_classifier_warning_is_shown_recorded_and_reported(tmp_path, monkeypatch):
    "The issue's example: 'classifies only 54% of held-out images ... its scores mean little' is printed as before, and kept for the report."
    monkeypatch.setenv('FASTGAN_STUDY_CACHE', str(tmp_path/'cache'))                  # the classifier trains afresh, here
    monkeypatch.setattr('fastgan_study.domain.classifier_accuracy', lambda *a, **k: 0.54)
    with pytest.warns(UserWarning, match=r'classifies only 54.0% of held-out images correctly: its scores mean little'):
        tiny(tmp_path/'run')
    said = read_warnings(tmp_path/'run')
    assert [w['message'] for w in said] == ['lenet-digits classifies only 54.0% of held-out images correctly: its scores mean little']
    md = (tmp_path/'run'/'report.md').read_text()
    assert md.index('## Warnings') < md.index('## Final scores') and '- lenet-digits classifies only 54.0%' in md

def test_fit_with_runfolder_records_its_warnings_but_not_libraries(tmp_path):
    "A notebook's learn.fit(cbs=RunFolder(...)) records warnings raised during the fit, once per message with a count; a library's own are left out."
    class Warns(L.Callback):
        def after_epoch(self):
            warnings.warn('this epoch was odd')
            warnings.warn_explicit("a library's own note", UserWarning, fastai.__file__, 1)
    learn = L.tiny_gan_learner(classes=['7'])
    with pytest.warns(UserWarning) as shown:
        before = warnings.showwarning
        learn.fit(2, cbs=[L.RunFolder(tmp_path/'nb', data='digits', classes=['7']), Warns()])
        assert warnings.showwarning is before, 'recording stopped with the fit'
    assert sum('this epoch was odd' in str(w.message) for w in shown) == 2               # still shown, both times
    assert sum("a library's own note" in str(w.message) for w in shown) == 2             # the library's too ...
    assert read_warnings(tmp_path/'nb') == [dict(category='UserWarning', message='this epoch was odd', count=2)]   # ... which is not the run's
    assert '<ul class=warnings><li>this epoch was odd (shown 2 times)</li></ul>' in write_report(tmp_path/'nb').read_text()

def test_resumed_run_keeps_what_it_said_before(tmp_path):
    class Warns(L.Callback):
        def after_epoch(self): warnings.warn(f'said in epoch {self.epoch + 1}')
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='You are shadowing an attribute')
        L.tiny_gan_learner(classes=['7']).fit(1, cbs=[L.RunFolder(tmp_path/'r', data='digits', classes=['7']), Warns()])
        L.tiny_gan_learner(classes=['7']).fit(2, cbs=[L.RunFolder(tmp_path/'r', resume=True, data='digits', classes=['7']), Warns()])
    assert [w['message'] for w in read_warnings(tmp_path/'r')] == ['said in epoch 1', 'said in epoch 2']
