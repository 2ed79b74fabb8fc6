"The FID speed benchmark compares equal work: on the same folders, our FID and pytorch-fid's command line agree to 1e-3."
import sys, pytest, torch
from conftest import ROOT, SHARED_DATA
sys.path.insert(0, str(ROOT/'benchmarks'))
import fid_speed as bench
from fastgan_study.core import FastGANError
from fastgan_study.metrics import InceptionFeatures, find_inception_weights

MNIST = SHARED_DATA/'mnist.npz'

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    if not MNIST.is_file(): pytest.skip(f"{MNIST} is absent (shared test data)")
    try: find_inception_weights()
    except FastGANError as e: pytest.skip(f"no FID Inception weights: {e}")
    root = tmp_path_factory.mktemp('fid_speed')
    return (*bench.write_folders(root/'images', 20, MNIST), bench.torch_home(root))

def test_small_dims_are_pooled_like_pytorch_fid(folders):
    real, _, home = folders
    f, _ = InceptionFeatures(64, weights=home/'hub'/'checkpoints'/bench.FID_WEIGHTS).features(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    assert f.shape == (2, 64), f"dims=64 gave {tuple(f.shape)} features: the block's feature maps need averaging to 1×1"

def test_our_fid_matches_pytorch_fid_on_the_benchmark_folders(folders):
    real, fake, home = folders
    (ours, _), (theirs, _) = bench.ours(real, fake, 64, home, 20), bench.theirs(real, fake, 64, home)
    assert ours > 1, ours                      # train and test digits differ: a real distance, not two empty sets
    assert abs(ours - theirs) <= 1e-3, (ours, theirs)
