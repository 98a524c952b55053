"""Latent preprocessing, heads, VI-Net assembly, throughput and the table."""

import numpy as np
import pytest
import torch

from vinet_utils import heads as H, latents as L, models as M, table, throughput as TP
from vinet_utils import vinet as V
from vinet_utils.ideals import fit_per_class, split_by_class, vanishing_matrix, off_diagonal_ratio
from vinet_utils.results import write_json
from vinet_utils.train import TrainConfig


def _clusters(n=600, c=12, k=3, seed=0):
    """k classes of latents, each on its own circle in a random 2-D plane of R^c."""
    g = torch.Generator().manual_seed(seed)
    zs, ys = [], []
    for j in range(k):
        basis = torch.linalg.qr(torch.randn(c, 2, generator=g))[0]
        t = torch.rand(n // k, generator=g) * 2 * np.pi
        circle = torch.stack([torch.cos(t), torch.sin(t)], 1) * (1 + j)
        zs.append(circle @ basis.T + 0.3 * torch.randn(c, generator=g) + 0.001 * torch.randn(n // k, c, generator=g))
        ys.append(torch.full((n // k,), j))
    return torch.cat(zs).float(), torch.cat(ys)


def test_preprocess_whitens_then_squashes():
    z = torch.randn(2000, 10) @ torch.randn(10, 10) + 5
    pre = L.Preprocess(10, 4).fit(z)
    u = pre(z)
    assert u.shape == (2000, 4) and u.abs().max() <= 1
    pre_tanh = torch.atanh(u.double().clamp(-1 + 1e-12, 1 - 1e-12))
    assert torch.allclose(torch.cov(pre_tanh.T), torch.eye(4, dtype=torch.float64), atol=1e-3)
    assert pre.count_params() == 10 * 4 + 10
    ratio = L.explained_variance_ratio(z)
    assert abs(float(ratio.sum()) - 1) < 1e-9 and torch.all(ratio[:-1] >= ratio[1:])
    with pytest.raises(ValueError, match="pca_dim must be between 1 and the latent dimension 10"):
        L.Preprocess(10, 11)


def test_per_class_ideals_are_class_specific():
    z, y = _clusters()
    pre = L.Preprocess(z.shape[1], 3).fit(z)
    pts = split_by_class(pre(z).double(), y, 3, samples_per_class=150, seed=0)
    models = fit_per_class(pts, psi=0.005, max_degree=3, tau=1000, progress=False)
    v = vanishing_matrix(models, pts)
    assert np.all(np.diag(v) < v.min(1, where=~np.eye(3, dtype=bool), initial=np.inf))
    assert off_diagonal_ratio(v) > 3


def test_vinet_head_counts_and_learns(tmp_path):
    z, y = _clusters()
    pre = L.Preprocess(z.shape[1], 3).fit(z)
    pts = split_by_class(pre(z).double(), y, 3, seed=0)
    from vinet_utils.ideals import CutFit
    models = fit_per_class(pts, psi=0.005, max_degree=3, tau=1000, progress=False)
    lat = {"train": z, "train_y": y, "test": z, "test_y": y}
    cf = CutFit("toy", "layer2", lat, pre, pts, models, 0.0)
    head, pr = V.poly_head(cf, keep_per_class=2, num_classes=3)
    assert head.poly.out_features == sum(len(k) for k in pr.kept) <= 6
    expect = (head.poly.count_params() + 12 * 3 + 12 + 2 * head.poly.out_features
              + head.poly.out_features * 3 + 3)
    assert head.count_params() == expect
    hist = V.train_head(head, lat, TrainConfig(epochs=5, batch_size=64, lr=0.05), tmp_path / "h.ckpt",
                        progress=False)
    assert hist["test_acc_final"] > 90
    abl = V.ablation_heads(cf, pr.kept, head.count_params(), 3, seed=0)
    mlp = abl["MLP"].count_params()
    assert abs(mlp - head.count_params()) <= 0.15 * head.count_params() + 20
    assert abl["random monomials"](z[:5]).shape == (5, 3)


def test_vinet_counts_base_and_freezes_it():
    model = M.resnet18(10, width=0.125)
    base = M.truncate(model, "small")
    head = H.LinearHead(32, 10)
    net = V.VINet(base, head).train()
    counts = net.param_counts()
    assert counts["base"] == M.count_params(base) and counts["total"] == counts["base"] + counts["poly"]
    assert not any(p.requires_grad for p in net.base.parameters()) and not net.base.training
    out = net(torch.randn(4, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (4, 10) and head.linear.weight.grad is not None


def test_throughput_is_interleaved_and_reports_mean_and_std():
    nets = {"a": torch.nn.Conv2d(3, 4, 3), "b": torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                                                   torch.nn.Conv2d(4, 4, 3))}
    x = torch.randint(0, 255, (64, 3, 16, 16), dtype=torch.uint8)
    batches = TP.input_batches(x, (0.5,) * 3, (0.2,) * 3, batch_size=16)
    out = TP.measure(nets, batches, repeats=3, progress=False)
    assert set(out) == {"a", "b"} and all(len(v["runs"]) == 3 for v in out.values())
    assert all(v["mean"] > 0 and v["std"] >= 0 for v in out.values())
    with pytest.raises(ValueError, match="repeats must be >= 2"):
        TP.measure(nets, batches, repeats=1)


def test_table_reads_everything_from_results_files(tmp_path):
    env = {"device_name": "cpu (test)", "torch_threads": 2, "torch_version": torch.__version__}
    write_json(tmp_path / "01_baseline.json", {
        "params": {"dataset": "cifar10", "arch": "resnet18", "width": 0.25, "epochs": 7,
                   "profile": "cpu"}, "metrics": {"test_acc": 90.0},
        "cuts": [{"variant": "full", "base_params": 700_000}]})
    write_json(tmp_path / "04_vinet.json", {"metrics": {"variants": [
        {"variant": "tiny", "total_params": 100_000, "base_params": 40_000, "poly_params": 60_000,
         "acc": 85.5}]}})
    write_json(tmp_path / "06_throughput.json", {**env, "params": {"compile": False}, "metrics": {
        "throughput": {"ResNet (full)": {"mean": 1000.0, "std": 10.0},
                       "VI-Net tiny": {"mean": 1800.0, "std": 20.0}}}})
    df, header = table.build(tmp_path)
    assert list(df["Model"]) == ["VI-Net18-Tiny", "ResNet18"]
    assert df["Speed-up"].iloc[0] == pytest.approx(1.8)
    assert df["Paper Speed-up"].iloc[0] == pytest.approx(100798 / 66533)
    assert df["Acc vs baseline"].iloc[0] == pytest.approx(-4.5)
    assert "width 0.25" in header and "7 training epochs" in header and "Scaled down" in header
    md, csv = table.write(tmp_path)
    text = md.read_text()
    assert "1800 ± 20" in text and "1.80x" in text and "88.62" in text and csv.exists()


def test_end_to_end_phase_leaves_the_baseline_untouched(synthetic_data, tmp_path):
    from vinet_utils import data as D
    from vinet_utils.ideals import fit_cut

    ds = D.load_dataset("cifar10", n_train=200, n_test=100)
    torch.manual_seed(0)
    model = M.resnet18(10, width=0.125).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cf = fit_cut(model, "resnet18", "large", ds, tmp_path, pca_dim=3, samples_per_class=20,
                 psi=0.01, max_degree=2, tau=1000, oracle="ihb", seed=0, progress=False)
    out = V.build_and_finetune(model, cf, ds, tmp_path, keep_per_class=3,
                               cfg=TrainConfig(epochs=2, batch_size=50, lr=0.05),
                               unfreeze_cfg=TrainConfig(epochs=1, batch_size=50, lr=0.01),
                               progress=False)
    assert out["history"]["phase"] == ["head", "head", "end to end"]
    assert out["row"]["unfreeze_base"] and out["row"]["acc"] == out["history"]["test_acc"][-1]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    net = V.rebuild(model, cf, ds, tmp_path, keep_per_class=3, unfreeze_base=True)
    assert net.param_counts()["total"] == out["row"]["total_params"]
    # the rebuilt network is the fine-tuned one: it reproduces the reported accuracy
    from vinet_utils.train import evaluate, image_batches
    acc = evaluate(net, image_batches(ds.test_x, ds.test_y, 100, ds.mean, ds.std, "cpu"))["acc"]
    assert acc == pytest.approx(out["row"]["acc"])
