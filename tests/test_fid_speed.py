"The FID speed benchmark compares equal work: on its own folders, our FID and pytorch-fid's command line agree to 1e-3."
import sys, pytest
from conftest import ROOT, SHARED_DATA
sys.path.insert(0, str(ROOT/'benchmarks'))
import fid_speed as bench
from fastgan_study.core import FastGANError
from fastgan_study.metrics import find_inception_weights

MNIST = SHARED_DATA/'mnist.npz'

def test_benchmark_fids_agree_with_pytorch_fid(tmp_path):
    if not MNIST.is_file(): pytest.skip(f"{MNIST} is absent (shared test data)")
    try: find_inception_weights()
    except FastGANError as e: pytest.skip(f"no FID Inception weights: {e}")
    real, fake = bench.write_folders(tmp_path/'images', 20, MNIST)
    home = bench.torch_home(tmp_path)
    (ours, _), (theirs, _) = bench.ours(real, fake, 64, home, 20), bench.theirs(real, fake, 64, home)
    assert ours > 1, ours                      # noisy test digits against training digits: a real distance, not two equal sets
    assert abs(ours - theirs) <= 1e-3, (ours, theirs)

def test_cached_mode_fids_agree_with_pytorch_fid(tmp_path):
    "Generated images against cached real statistics: ours (sampled in memory) and pytorch-fid (the same images as PNGs, its --save-stats .npz)."
    if not MNIST.is_file(): pytest.skip(f"{MNIST} is absent (shared test data)")
    try: find_inception_weights()
    except FastGANError as e: pytest.skip(f"no FID Inception weights: {e}")
    real, gen, home = bench.real_set(MNIST, 30), bench.benchmark_generator(n_features=8), bench.torch_home(tmp_path)
    (ours, _), (theirs, _) = bench.cached(20, 64, 'cpu', real, gen, home, tmp_path)
    assert (tmp_path/'real_stats.npz').is_file() and len(list((tmp_path/'fake').glob('*.png'))) == 20
    assert ours > 1, ours                      # generator noise against digits: a real distance
    assert abs(ours - theirs) <= 1e-3, (ours, theirs)
