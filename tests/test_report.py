"Reports of run and study folders: tables, embedded images, partial studies, the bad-folder error, and a headless Chromium rendering."
import base64, io, re, shutil, subprocess, warnings
import numpy as np, pandas as pd, pytest
from PIL import Image
from fastgan_study.core import FastGANError, load_yaml, save_yaml
from fastgan_study.learner import train
from fastgan_study.report import write_report, mean_std, strip_epochs
from fastgan_study.runs import read_metrics, read_scores, read_references
from fastgan_study.study import references_table

pytestmark = pytest.mark.usefixtures('one_thread')
AXES = ['lr']

def _train(out, lr, seed):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)       # fastai's "shadowing an attribute" notices from GANTrainer
        train('digits', size=16, classes='1,7', epochs=2, bs=16, n_features=8, lr=lr, seed=seed, score_every=1,
              out=out, progress=False, device='cpu')

def trial_row(folder, trial, cell, seed, **axes):
    "results.csv's row of a trial, read from its run folder as the study module would."
    run = folder/'trials'/trial
    c, m, s = load_yaml(run/'config.yaml'), read_metrics(run), read_scores(run)
    return dict(trial=trial, cell=cell, **axes, seed=seed, status=c['status'], error='', **{k: v.value for k, v in s.items()},
                best_domain_fd=m.domain_fd.min(), seconds=c['seconds'], epochs=len(m), gen_updates=m.gen_updates.iloc[-1],
                crit_updates=m.crit_updates.iloc[-1], images_seen=len(m) * c['n_images'], images_per_s=len(m) * c['n_images'] / c['seconds'],
                device=c['device'], gen_params=c['generator_params'], crit_params=c['critic_params'])

def summarise(results, axes, vs=None):
    "summary.csv's rows (domain_fd, lower is better) from the done trials; every cell compared with `vs` at a fixed p."
    done = results[results.status == 'done']
    g = done.groupby(['cell', *axes], sort=False).domain_fd.agg(['count', 'mean', 'std']).reset_index()
    half = 12.706 * g['std'] / g['count']**0.5                                             # t(0.975, 1 dof): two seeds
    return g.rename(columns={'count': 'n'}).assign(score='domain_fd', better='lower', rel_std=g['std'] / g['mean'], ci_low=g['mean'] - half,
            ci_high=g['mean'] + half, vs=[vs if c != vs else None for c in g.cell], diff=None,
            p=[0.03 if vs and c != vs else None for c in g.cell], verdict=[('better' if vs and c != vs else None) for c in g.cell], selection='final')

def study_yaml(folder, name, grid, ablate=None, axes=AXES, **more):
    save_yaml(dict(name=name, file=f'studies/{name}.yaml', base=dict(data='digits', classes='1,7', epochs=2, bs=16, n_features=8),
                   grid=grid, ablate=ablate or {}, seeds=[0, 1], scores=['domain'], n_score=361, axes=axes, **more), folder/'study.yaml')

@pytest.fixture(scope='module')
def trials(tmp_path_factory):
    "Four real two-epoch runs: two learning rates × two seeds."
    root = tmp_path_factory.mktemp('trials')
    for lr in ('0.0002', '0.002'):
        for seed in (0, 1): _train(root/f'lr={lr}-seed={seed}', float(lr), seed)
    return root

def make_study(folder, trials, names=None):
    "A study folder following the study module's contract: study.yaml, results.csv, summary.csv and trials/."
    names = names or sorted(p.name for p in trials.iterdir())
    for n in names: shutil.copytree(trials/n, folder/'trials'/n)
    rows = [trial_row(folder, n, n.split('-')[0], int(n[-1]), lr=n.split('-')[0][3:]) for n in names]
    results = pd.DataFrame(rows)
    results.to_csv(folder/'results.csv', index=False)
    references_table(dict(compare='lr=0.0002'), results, folder).to_csv(folder/'references.csv', index=False)   # as the study module writes it
    study_yaml(folder, 'learning rate', dict(lr=[0.0002, 0.002]))
    return results

@pytest.fixture(scope='module')
def study(trials, tmp_path_factory):
    folder = tmp_path_factory.mktemp('study')
    results = make_study(folder, trials)
    summary = summarise(results, AXES, vs='lr=0.0002')
    summary.to_csv(folder/'summary.csv', index=False)
    return folder, results, summary, write_report(folder)

def images(page): return re.findall(r'<img [^>]*src="([^"]*)"', page)

# --- a run

def test_run_report(trials, tmp_path):
    run = shutil.copytree(trials/'lr=0.0002-seed=0', tmp_path/'run')
    page, md = write_report(run).read_text(), (run/'report.md').read_text()
    fd = read_scores(run)['domain_fd']
    assert f'<td>{mean_std(fd.value, fd.std)}</td>' in page and 'extractor lenet-digits' in page
    assert len(images(page)) == 4 and all(s.startswith('data:image/png;base64,') for s in images(page))   # final grid, strip, losses, score curves
    for s in images(page): Image.open(io.BytesIO(base64.b64decode(s.split(',', 1)[1]))).verify()      # real PNGs
    assert '<details><summary>config.yaml' in page and 'lr: 0.0002' in page
    assert md.startswith('# Run run') and '| dcgan | digits (361 images, 16×16, classes 1, 7) | done | 2 of 2 |' in md
    assert 'Warnings' not in page and 'The fixed-noise grid before training and after every epoch' in page

def test_run_scores_beside_their_references(trials, tmp_path):
    "The issue's must-show: the closing scores table has a reference row per reference, measured the same way; the card is said once."
    run = shutil.copytree(trials/'lr=0.0002-seed=0', tmp_path/'run')
    page, md = write_report(run).read_text(), (run/'report.md').read_text()
    scores, refs = read_scores(run), read_references(run)
    assert md.count('Measured: extractor lenet-digits') == 1 and 'modes: also min_share 0.5000.' in md      # once, not per row
    rows = [l for l in md.splitlines() if l.startswith('| ') and ('this run' in l or '*' in l)]
    assert [r.split(' | ')[0] for r in rows] == ['| this run', '| *untrained generator*', '| *real vs real* (with real_count 181, fake_count 180)']
    for label, r in (('this run', scores), *refs.items()):
        line = next(l for l in rows if label in l)
        assert all(mean_std(r[k].value, r[k].std) in line for k in scores), (label, line)
    assert refs['real vs real']['domain_fd'].value < scores['domain_fd'].value
    assert '<th class=ref>untrained generator</th>' in page and 'what no learning gives' in page

def test_old_run_without_references_warnings_or_grids_still_reports(trials, tmp_path):
    run = shutil.copytree(trials/'lr=0.0002-seed=0', tmp_path/'old')
    (run/'references.yaml').unlink(); shutil.rmtree(run/'samples'); (run/'samples').mkdir()
    page = write_report(run).read_text()
    fd = read_scores(run)['domain_fd']
    assert f'<td>{mean_std(fd.value, fd.std)}</td>' in page and 'real vs real' not in page and 'Warnings' not in page
    assert len(images(page)) == 2 and 'No final sample grid yet' in page                 # losses and score curves

def test_strip_frames():
    "Every k-th epoch, at most eight frames, the last always in."
    assert strip_epochs(list(range(3))) == [0, 1, 2] and strip_epochs([]) == []
    for n in (8, 9, 10, 31, 150, 151, 1000):
        pick = strip_epochs(list(range(n)))
        assert len(pick) <= 8 and pick[0] == 0 and pick[-1] == n - 1 and len(set(pick)) == len(pick), (n, pick)
        steps = {b - a for a, b in zip(pick, pick[1:-1])}
        assert len(steps) <= 1, (n, pick)                                                  # evenly spaced but for the last

def test_running_run_renders(trials, tmp_path):
    "A run still training: no scores, no final grid, no time yet."
    run = shutil.copytree(trials/'lr=0.0002-seed=0', tmp_path/'running')
    (run/'scores.yaml').unlink(); (run/'samples'/'final.png').unlink()
    c = load_yaml(run/'config.yaml'); c.pop('seconds'); save_yaml(dict(c, status='running'), run/'config.yaml')
    page = write_report(run, out=tmp_path/'out'/'r.html').read_text()
    assert (tmp_path/'out'/'r.md').exists() and 'No final scores' in page and 'No final sample grid yet' in page
    assert '<td>running</td>' in page and len(images(page)) == 3          # the strip of grids so far, losses and score curves still drawn

# --- a study

def test_study_tables(study):
    folder, results, summary, html = study
    page, md = html.read_text(), (folder/'report.md').read_text()
    s = summary.set_index('cell')
    text = {c: mean_std(s.loc[c, 'mean'], s.loc[c, 'std']) for c in s.index}
    best = s['mean'].idxmin()
    assert f'<b>{text[best]} ★</b>' in page and page.count('★</b>') == 1
    assert all(t in md for t in text.values()) and '| lr | domain_fd |' in md
    assert 'p = 0.03, better than lr=0.0002' in page
    assert '4 trials: 4 done, 0 diverged, 0 failed.' in page and 'is not used' in page
    assert len(images(page)) == 4 and all(i.startswith('data:image/png;base64,') for i in images(page))
    assert '<details><summary>study.yaml' in page and '| lr=0.002 | 2 (2) |' in md     # compute table
    assert md.count('| *untrained generator* |') == 1 and md.count('| *real vs real* |') == 1   # once per table
    assert 'n = 2, the seeds of lr=0.0002' in md and 'with real_count 181, fake_count 180' in md

def test_withheld_verdict_says_why(trials, tmp_path):
    results = make_study(tmp_path, trials)
    summary = summarise(results, AXES, vs='lr=0.0002').assign(verdict='', verdict_note=['', 'no verdict: 2 seeds per cell, at least 3 needed'])
    summary.to_csv(tmp_path/'summary.csv', index=False)
    study_yaml(tmp_path, 'learning rate', dict(lr=[0.0002, 0.002]), min_seeds=3)
    page = write_report(tmp_path).read_text()
    assert 'p = 0.03, compared with lr=0.0002; no verdict: 2 seeds per cell, at least 3 needed' in page
    assert 'better than' not in page and 'needs at least 3 seeds in both cells (min_seeds)' in page

def test_two_axes_pivot(trials, tmp_path):
    "A 2 × 2 grid: the first axis down, the second across, literal mean ± std strings and the interval."
    make_study(tmp_path, trials)
    summary = pd.DataFrame(dict(cell=['lr=0.0002,opt=adam', 'lr=0.0002,opt=sgd', 'lr=0.002,opt=adam', 'lr=0.002,opt=sgd'],
                                lr=['0.0002', '0.0002', '0.002', '0.002'], opt=['adam', 'sgd'] * 2, score='domain_is', better='higher',
                                n=2, mean=[1.5, 1.2, 2.25, 1.9], std=[0.1, 0.05, 0.0123, 0.3], ci_low=[0.6, 0.75, 2.14, -0.8],
                                ci_high=[2.4, 1.65, 2.36, 4.6], vs='', p=None, verdict='', selection='final'))
    summary.to_csv(tmp_path/'summary.csv', index=False)
    study_yaml(tmp_path, 'grid', dict(lr=[0.0002, 0.002], opt=['adam', 'sgd']), axes=['lr', 'opt'])
    md = (write_report(tmp_path).with_suffix('.md')).read_text()
    assert '| lr \\ opt | adam | sgd |' in md
    assert '| 0.0002 | 1.50 ± 0.10 (95% CI [0.60, 2.40], n = 2) | 1.200 ± 0.050 (95% CI [0.750, 1.650], n = 2) |' in md
    assert '| 0.002 | **2.250 ± 0.012 ★** (95% CI [2.140, 2.360], n = 2) | 1.90 ± 0.30' in md

def test_ablation_without_a_grid_gets_a_row_per_cell(trials, tmp_path):
    make_study(tmp_path, trials)
    summary = pd.DataFrame(dict(cell=['base', 'lr=0.002', 'opt=sgd'], lr=['', '0.002', ''], opt=['', '', 'sgd'], score='domain_fd',
                                better='lower', n=2, mean=[30., 20., 40.], std=[1., 2., 3.], ci_low=None, ci_high=None,
                                vs=['', 'base', 'base'], p=[None, 0.2, 0.0004], p_holm=[None, 0.4, 0.0008], verdict=['', 'no difference', 'worse'],
                                selection='final'))
    summary.to_csv(tmp_path/'summary.csv', index=False)
    study_yaml(tmp_path, 'ablation', {}, dict(lr=[0.002], opt=['sgd']), axes=['lr', 'opt'])
    page, md = write_report(tmp_path).read_text(), (tmp_path/'report.md').read_text()
    assert '| cell | domain_fd |' in md and '| base | 30.0 ± 1.0 (base; n = 2) |' in md
    assert 'p = 0.2 (Holm p = 0.4), no difference from base' in page and 'p &lt; 0.001 (Holm p &lt; 0.001), worse than base' in page
    assert 'one at a time from the base: lr → 0.002; opt → sgd' in page

def test_half_done_study_renders(trials, tmp_path):
    "Trials missing, failed, diverged or still running: the report renders and says so."
    results = make_study(tmp_path, trials, ['lr=0.0002-seed=0', 'lr=0.0002-seed=1', 'lr=0.002-seed=0'])
    shutil.copytree(trials/'lr=0.002-seed=1', tmp_path/'trials'/'lr=0.002-seed=1')          # running: not in results.csv yet
    (tmp_path/'trials'/'lr=0.0002-seed=1'/'model.pth').unlink()
    results.loc[1, ['status', 'error', 'domain_fd']] = ['failed', 'CUDA out of memory', None]
    results.loc[2, 'status'] = 'diverged'
    results.to_csv(tmp_path/'results.csv', index=False)
    summarise(results, AXES).to_csv(tmp_path/'summary.csv', index=False)                    # one seed per cell: no std
    page = write_report(tmp_path).read_text()
    assert '4 trials: 1 done, 1 diverged, 1 failed, 1 not finished.' in page
    study_yaml(tmp_path, 'learning rate', dict(lr=[0.0002, 0.002]), n_trials=6)              # the planned count, when the study gives it
    page = write_report(tmp_path).read_text()
    assert '6 trials: 1 done, 1 diverged, 1 failed, 3 not finished.' in page
    assert '<td>CUDA out of memory</td>' in page and len(images(page)) == 4
    assert '<td>' + f"{results.domain_fd[0]:.4g}" in page                      # the one finished seed, without a spread

def test_study_without_results_yet(tmp_path):
    study_yaml(tmp_path, 'just started', dict(lr=[0.0002, 0.002]))
    page = write_report(tmp_path).read_text()
    assert '0 trials: 0 done' in page and 'No summary.csv yet' in page

def test_neither_run_nor_study(tmp_path):
    with pytest.raises(FastGANError, match=r'neither a run folder \(no config.yaml\) nor a study folder'):
        write_report(tmp_path)
    with pytest.raises(FastGANError, match='no folder'): write_report(tmp_path/'typo')

# --- what a browser shows

def chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None: pytest.skip('Chromium is not installed (apt-get install chromium): the rendering check needs a browser')
    return exe

def test_chromium_renders_study_report(study, tmp_path):
    exe, html = chromium(), study[3]
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--window-size=1200,2000']
    shot = subprocess.run([exe, *flags, f'--screenshot={tmp_path/"x.png"}', html.as_uri()], capture_output=True, text=True, timeout=60)
    assert (tmp_path/'x.png').exists(), shot.stderr
    im = np.asarray(Image.open(tmp_path/'x.png').convert('RGB'))
    assert im.shape == (2000, 1200, 3) and len(np.unique(im.reshape(-1, 3), axis=0)) > 100      # not blank: text, tables, images
    dom = subprocess.run([exe, *flags, '--dump-dom', html.as_uri()], capture_output=True, text=True, timeout=60).stdout
    srcs = re.findall(r'<img [^>]*src="([^"]*)"', dom)
    assert dom.count('<table>') == 2 and len(srcs) == 4 and all(s.startswith('data:image/png;base64,') for s in srcs)
    assert not re.search(r'(src|href)="(https?:|//)', dom)                                     # nothing fetched from a network

def test_chromium_renders_run_report_with_reference_rows(trials, tmp_path):
    exe, run = chromium(), shutil.copytree(trials/'lr=0.0002-seed=0', tmp_path/'run')
    html = write_report(run)
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--window-size=1200,2400']
    subprocess.run([exe, *flags, f'--screenshot={tmp_path/"x.png"}', html.as_uri()], capture_output=True, text=True, timeout=60)
    im = np.asarray(Image.open(tmp_path/'x.png').convert('RGB'))
    assert im.shape == (2400, 1200, 3) and len(np.unique(im.reshape(-1, 3), axis=0)) > 100
    dom = subprocess.run([exe, *flags, '--dump-dom', html.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert dom.index('>this run<') < dom.index('>untrained generator<') < dom.index('>real vs real<')   # the reference rows, under the run's
    assert dom.count('<img ') == 4 and 'The fixed-noise grid before training' in dom
