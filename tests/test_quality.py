"The quality benchmark on a tiny budget: one row per model, finite scores, and the update counts its runs wrote."
import csv, math, sys, pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'benchmarks'))
import quality as bench
from fastgan_study.core import FastGANError, load_yaml
from fastgan_study.metrics import find_inception_weights

def test_quality_table_has_one_scored_row_per_model(tmp_path, capsys, one_thread):
    try: find_inception_weights()
    except FastGANError as e: pytest.skip(f"no FID Inception weights: {e}")
    rows = bench.main(models=('real', 'dcgan', 'wgan-gp', 'cdcgan'), data='digits', size=16, epochs=1, n_features=8, bs=64, n=64, draws=2,
                      dims=64, device='cpu', out=tmp_path, precision='bf16')
    floor, rows = rows[0], rows[1:]
    assert floor['model'] == 'real (train split)' and 0 < floor['fid'] < min(r['fid'] for r in rows)   # real digits beat 1-epoch nets
    assert [r['model'] for r in rows] == ['dcgan', 'wgan-gp', 'cdcgan']
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ('fid', 'fid_std', 'domain_fd', 'domain_is', 'train_s', 'score_s')), r
        assert r['fid'] > 0 and r['fid_std'] > 0 and 1 <= r['domain_is'] <= 10 and 0 <= r['modes'] <= 10
        last = list(csv.DictReader(open(tmp_path/'runs'/r['model']/'metrics.csv')))[-1]
        assert (r['gen_updates'], r['crit_updates']) == (int(last['gen_updates']), int(last['crit_updates'])) and r['gen_updates'] > 0
    # 1,797 digits in batches of 64 make 28 steps: alternating for dcgan, five critic steps to one generator step for wgan-gp
    assert rows[1]['crit_updates'] > 3 * rows[1]['gen_updates'] and abs(rows[0]['crit_updates'] - rows[0]['gen_updates']) <= 1
    assert math.isnan(rows[0]['cond_acc']) and 0 <= rows[2]['cond_acc'] <= 1          # only the conditional model is asked for digits
    table = capsys.readouterr().out
    assert table.count('\n| ') == 1 + 4 and '± ' in table and 'held-out accuracy' in table
    assert (tmp_path/'quality.md').read_text().strip() == table.strip() and 'precision bf16' in table
    assert all(load_yaml(tmp_path/'runs'/m/'config.yaml')['precision'] == 'bf16' for m in ('dcgan', 'wgan-gp', 'cdcgan'))
    assert len(list(csv.DictReader(open(tmp_path/'quality.csv')))) == 4
