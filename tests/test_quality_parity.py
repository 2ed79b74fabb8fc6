"The quality-parity benchmark on a tiny budget: main.py's nets and init, equal nets and updates on both sides, ours sampled as `learn.sample`, Welch CIs and the printed table."
import math, sys, numpy as np, pytest, torch
from conftest import ROOT, SHARED_DATA
sys.path.insert(0, str(ROOT/'benchmarks'))
import quality_parity as bench
from fastgan_study.data import load_images
from fastgan_study.domain import domain_classifier
from fastgan_study.models import count_params

MNIST = SHARED_DATA/'mnist.npz'
needs_mnist = pytest.mark.skipif(not MNIST.exists(), reason=f"no {MNIST}: the parity benchmark trains on MNIST")

def test_peer_is_main_py_at_32px():
    G, D = bench.canonical_nets(nc=1, nz=100, nf=64)
    convs = [m for m in [*G, *D] if 'Conv' in type(m).__name__]
    bns = [m for m in [*G, *D] if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 8 and len(bns) == 5 and all(m.bias is None for m in convs)          # 4 + 4 layers, no conv biases
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.std().item() - 0.02) < 5e-4 and abs(w.mean().item()) < 5e-4                 # N(0, 0.02)
    g = torch.cat([m.weight for m in bns])
    assert abs(g.mean().item() - 1) < 5e-3 and 0.015 < g.std().item() < 0.025 and all((m.bias == 0).all() for m in bns)
    x = G(torch.randn(4, 100, 1, 1))
    assert x.shape == (4, 1, 32, 32) and x.abs().max() <= 1 and D(x).shape == (4, 1, 1, 1) and ((D(x) > 0) & (D(x) < 1)).all()

def test_our_nets_differ_from_main_pys_by_two_biases():
    "The docstring's claim: our dcgan nets are main.py's layers plus a bias in D's first and G's last convolution."
    (cg, cd), (og, od) = bench.bodies('canonical', 1, 100, 64), bench.bodies('ours', 1, 100, 64)
    assert count_params(og) - count_params(cg) == 1 and count_params(od) - count_params(cd) == 64
    assert [type(m) for m in cg] == [type(m) for m in og] and [type(m) for m in cd] == [type(m) for m in od]
    z = torch.randn(3, 100)
    assert cg(z).shape == og(z).shape == (3, 1, 32, 32) and cd(cg(z)).shape == od(og(z)).shape == (3, 1)

def test_welch_interval_and_verdicts():
    a, b = [10.0, 11.0, 12.0], [7.0, 7.5, 8.2]
    d, lo, hi, p = bench.welch(a, b)
    ci = bench.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert math.isclose(lo, ci.low, rel_tol=1e-9) and math.isclose(hi, ci.high, rel_tol=1e-9) and lo < d < hi and 0 < p < 0.05
    assert bench.verdict(lo, hi, -1) == 'ours worse' and bench.verdict(lo, hi, +1) == 'ours better' and bench.verdict(-1, 1, -1) == 'within noise'
    assert bench.welch([10, 10], [10, 10])[1:3] == (0, 0)                                     # both spreads 0 (e.g. all 10 modes)

@needs_mnist
def test_both_sides_make_the_same_updates(tmp_path, one_thread):
    d = np.load(MNIST)
    np.savez(small := tmp_path/'mnist300.npz', **{k: d[k][:300] for k in ('x_train', 'y_train', 'x_test', 'y_test')})
    peer = bench.train_canonical(load_images(small, size=32, split='train'), 5, n_features=8, seed=0)   # batches 128, 128, 44: epochs of 3 updates
    assert (peer['gen_updates'], peer['crit_updates']) == (5, 5)
    ours = bench.train_ours(small, 5, n_features=8, seed=0)                                   # 2 batches an epoch: 10 batches over 5 epochs
    assert (ours['gen_updates'], ours['crit_updates']) == (5, 5) and (ours['gen_params'], ours['crit_params']) == (peer['gen_params'], peer['crit_params'])
    learn = ours['learn']
    assert [{k: g[k] for k in ('lr', 'betas', 'eps', 'weight_decay')} for g in learn.opt.opt.param_groups] == \
           [dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-8, weight_decay=0)] * 2                  # main.py's Adam, for each network
    steps = {id(p): s['step'] for p, s in learn.opt.opt.state.items()}
    assert {int(steps[id(p)]) for p in learn.model.generator.parameters()} == {int(steps[id(p)]) for p in learn.model.critic.parameters()} == {5}
    x = bench.generated(ours['G'], 16, seed=0, bn='eval')                                     # ours is scored as learn.sample draws it
    assert (x.float() - learn.sample(16, seed=0).mul(255)).abs().max() <= 1
    before = {k: v.clone() for k, v in ours['G'].state_dict().items()}
    bench.generated(ours['G'], 16, seed=0, bn='batch')                                        # batch statistics leave the running ones alone
    assert all(torch.equal(before[k], v) for k, v in ours['G'].state_dict().items())

@needs_mnist
def test_parity_table_at_a_tiny_budget(tmp_path, capsys, one_thread):
    train = load_images(MNIST, size=32, split='train')
    clf = domain_classifier(bench.first(train, 3000), steps=150)
    rows, summ, text = bench.main(updates=3, seeds=2, n=40, n_features=8, dims=0, device='cpu', data=MNIST, out=tmp_path, classifier=clf)
    assert [(r['side'], r['seed']) for r in rows] == [('canonical', 0), ('ours', 0), ('canonical', 1), ('ours', 1)]
    assert {(r['gen_updates'], r['crit_updates'], r['gen_params'], r['crit_params']) for r in rows} == {(3, 3, 61_680, 10_976)}
    assert all(math.isnan(r['fid']) and r['domain_fd'] > 0 and 1 <= r['domain_is'] <= 10 for r in rows)
    assert all(r['domain_fd'] == r['domain_fd_batch' if r['side'] == 'canonical' else 'domain_fd_eval'] for r in rows)  # each side as it samples itself
    assert [s['score'] for s in summ] == ['domain_fd', 'domain_is', 'modes', 'domain_fd_eval', 'domain_fd_batch']
    assert all(s['lo'] <= s['diff'] <= s['hi'] and s['verdict'] in ('within noise', 'ours worse', 'ours better') for s in summ)
    out = capsys.readouterr().out
    for line in ('| domain FD |', '| domain IS |', '| modes |', '95% CI (Welch t)', 'Verdict (Inception FID): not measured; (domain FD): ',
                 'Full budget on a GPU: python benchmarks/quality_parity.py --updates 10000 --seeds 3 --n 10000 --device cuda'):
        assert line in out, line
    assert 'Inception FID |' not in out and (tmp_path/'parity.md').read_text().strip() in out and len((tmp_path/'parity.csv').read_text().splitlines()) == 5
