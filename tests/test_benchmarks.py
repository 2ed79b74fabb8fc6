"The overhead benchmark compares equal work: fed the same batches, the hand loop ends with the recipe's weights."
import sys, torch
from conftest import ROOT
sys.path.insert(0, str(ROOT/'benchmarks'))
import train_overhead as bench
from fastgan_study.core import set_seed

def test_hand_loop_does_the_recipes_updates():
    dls = bench.make_dls(size=16, bs=32, seed=0)
    learn = bench.ours(dls, epochs=2, n_features=8)
    dls = bench.make_dls(size=16, bs=32, seed=0)
    def plain():
        for z, x in dls.train: yield z.as_subclass(torch.Tensor), x.as_subclass(torch.Tensor)
        for _ in dls.valid: pass   # fastai iterates the (empty) validation set each epoch, which draws one seed from torch's RNG
    G, D = bench.hand(2, plain, 16, 1, n_features=8)
    for a, b in ((learn.model.generator, G), (learn.model.critic, D)):
        for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(p.float(), q.float(), atol=1e-6), n   # bitwise equal here; the tolerance only allows for other BLAS builds
    assert learn.opt.state_dict()['state'][0]['step'] > 0   # the recipe really trained

def test_tensor_batches_cover_the_data_once():
    x = torch.arange(10, dtype=torch.uint8)[:, None, None, None].expand(10, 1, 2, 2)
    seen = torch.cat([r for _, r in bench.tensor_batches(x, 5, 3)])
    assert sorted(((seen[:, 0, 0, 0] + 1) * 127.5).round().tolist()) == list(range(10))

def test_data_speed_sides_read_the_same_images(tmp_path, capsys):
    "benchmarks/data_speed.py: both sides read every file at the same size, with the same crop (pixels within a few levels), and it prints its ratios."
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location('data_speed', ROOT/'benchmarks'/'data_speed.py'); ds = importlib.util.module_from_spec(spec)
    sys.modules['data_speed'] = ds; spec.loader.exec_module(ds)
    root = ds.make_folder(tmp_path/'data', 24)
    peer = torch.stack([x for x, _ in ds.peer_loader(root, 64, 8, 0).dataset])
    from fastgan_study.data import load_images
    ours = load_images(root, size=64, cache_dir=tmp_path/'cache').images
    assert peer.shape == ours.shape == (24, 3, 64, 64)
    diff, pooled = (peer.float() - ours.float()).abs(), (torch.nn.functional.avg_pool2d(peer.float() - ours.float(), 4)).abs()
    assert diff.mean() < 1.5 and pooled.max() < 8, (diff.mean(), pooled.max())   # resize-then-crop vs crop-then-resize: the same square, the same filter
    ds.main(['--n', '48', '--bs', '8', '--size', '32', '--workers', '1', '--model-steps', '1', '--keep', str(tmp_path/'data')])
    out = capsys.readouterr().out
    for line in ('torchvision ImageFolder + DataLoader', 'ours, cold', 'ours, mapped', "the peer's epoch / our warm epoch", 'data is'): assert line in out, out
