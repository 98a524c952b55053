"""Latent preprocessing, heads, VI-Net assembly, throughput and the table."""

import copy

import numpy as np
import pytest
import torch

from vinet_utils.method import heads as H, latents as L
from vinet_utils.network import models as M
from vinet_utils.report import paper_table as table
from vinet_utils.experiments import throughput as TP
from vinet_utils.experiments import ablations as A
from vinet_utils.network import train as T
from vinet_utils.method import vinet as V
from vinet_utils.method.ideals import fit_per_class, split_by_class, vanishing_matrix, off_diagonal_ratio
from vinet_utils.common.results import write_json
from vinet_utils.network.train import TrainConfig


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
    assert not any(p.requires_grad for p in pre.parameters())
    pre.trainable(True)
    pre(z[:8]).sum().backward()
    assert pre.projection.grad is not None and pre.mean.grad is not None
    with pytest.raises(ValueError, match="pca_dim must be between 1 and the latent dimension 10"):
        L.Preprocess(10, 11)


def test_randomized_pca_matches_the_exact_spectrum_in_half_precision():
    g = torch.Generator().manual_seed(0)
    # 3000 points in 600 dimensions with a decaying spectrum, stored as float16
    scales = 0.7 ** torch.arange(600, dtype=torch.float64)
    z64 = (torch.randn(3000, 600, generator=g, dtype=torch.float64) * scales) \
        @ torch.linalg.qr(torch.randn(600, 600, generator=g, dtype=torch.float64))[0] + 2.0
    z = z64.half()
    evals, evecs = torch.linalg.eigh(torch.cov(z.double().T))
    exact = (evals.flip(0) / evals.sum())[:8]
    pca = L.randomized_pca(z, 8, seed=1)
    assert torch.allclose(pca["explained_variance_ratio"], exact, rtol=1e-3, atol=1e-5)
    top = evecs[:, -8:].flip(1)
    cos = (pca["components"] * top).sum(0).abs()
    assert cos.min() > 0.999
    again = L.randomized_pca(z, 8, seed=1)
    assert torch.equal(again["components"], pca["components"])  # seeded: same numbers
    ratio = L.explained_variance_ratio(z, 64)
    assert ratio.shape == (64,) and torch.all(ratio[:-1] >= ratio[1:]) and float(ratio.sum()) <= 1


@pytest.mark.parametrize("pool,dim", [("flatten", 8 * 6 * 6), ("gap", 8), ("2x2", 32), ("4x4", 128)])
def test_pool_shapes(pool, dim):
    x = torch.randn(3, 8, 6, 6)
    out = L.Pool(pool)(x)
    assert out.shape == (3, dim)
    if pool == "flatten":
        assert torch.equal(out[1], x[1].reshape(-1))
    if pool == "gap":
        assert torch.allclose(out, x.mean((2, 3)))
    with pytest.raises(ValueError, match="pool must be one of flatten, gap, 2x2, 4x4"):
        L.Pool("max")


def test_per_class_ideals_are_class_specific():
    z, y = _clusters()
    pre = L.Preprocess(z.shape[1], 3).fit(z)
    pts = split_by_class(pre(z).double(), y, 3, samples_per_class=150, seed=0)
    models = fit_per_class(pts, psi=0.005, max_degree=3, tau=1000, progress=False)
    v = vanishing_matrix(models, pts)
    assert np.all(np.diag(v) < v.min(1, where=~np.eye(3, dtype=bool), initial=np.inf))
    assert off_diagonal_ratio(v) > 3


def _toy_fit():
    from vinet_utils.method.ideals import CutFit
    z, y = _clusters()
    pre = L.Preprocess(z.shape[1], 3).fit(z)
    pts = split_by_class(pre(z).double(), y, 3, seed=0)
    models = fit_per_class(pts, psi=0.005, max_degree=3, tau=1000, progress=False)
    lat = {"train": z.half(), "train_y": y, "test": z.half(), "test_y": y}
    return CutFit("toy", "layer2", "flatten", lat, pre, pts, models, 0.0), z


def test_vinet_head_counts_and_learns(tmp_path):
    cf, z = _toy_fit()
    head, pr = V.poly_head(cf, keep_per_class=2, num_classes=3, train_projection=True)
    assert head.poly.out_features == sum(len(k) for k in pr.kept) <= 6
    expect = (head.poly.count_params() + 12 * 3 + 12 + 2 * head.poly.out_features
              + head.poly.out_features * 3 + 3)
    assert head.count_params() == expect
    before = head.preprocess.projection.detach().clone()
    hist = T.train_head(head, cf.latents, TrainConfig(epochs=5, batch_size=64, lr=0.05),
                        tmp_path / "h.ckpt", progress=False)
    assert hist["test_acc_final"] > 90
    assert not torch.equal(head.preprocess.projection.detach(), before)  # trained
    assert torch.equal(cf.preprocess.projection.detach(), before)        # the fit's stays
    abl = {k: make() for k, make in A.ablation_heads(cf, pr.kept, head.count_params(), 3).items()}
    assert set(abl) == {"linear (flatten)", "random monomials", "MLP", "projection + linear"}
    mlp = abl["MLP"].count_params()
    assert abs(mlp - head.count_params()) <= 0.15 * head.count_params() + 20
    assert abl["projection + linear"].count_params() == 12 * 3 + 12 + 2 * 3 + 3 * 3 + 3
    for h in abl.values():
        assert h(z[:5]).shape == (5, 3)


def test_rival_settings_train_each_comparison_head_as_chosen(tmp_path):
    from types import SimpleNamespace
    cf, _ = _toy_fit()
    model = M.resnet18(3, width=0.125)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05)
    settings = {"linear": {"finetune_lr": 0.01},
                "random monomials": {"finetune_lr": 0.2, "train_projection": False}}
    rows = A.evaluate_ablations(model, cf, SimpleNamespace(num_classes=3), tmp_path,
                                keep_per_class=2, cfg=cfg, train_projection=True,
                                rival_settings=settings, progress=False)
    assert {r["head"] for r in rows} == {"VI-Net", "linear (flatten)", "random monomials",
                                          "MLP", "projection + linear"}
    tags = {r["head"]: V.tag_of(cf, "vinet-k2" if r["head"] == "VI-Net" else r["head"])
            for r in rows}
    saved = {name: torch.load(tmp_path / "heads" / f"{tag}-s0.ckpt", weights_only=False)
             for name, tag in tags.items()}
    lr = {name: s["config"]["lr"] for name, s in saved.items()}
    assert lr == {"VI-Net": 0.05, "linear (flatten)": 0.01, "random monomials": 0.2,
                  "MLP": 0.05, "projection + linear": 0.05}
    fitted = cf.preprocess.projection.detach()
    # random monomials kept the fitted projection; projection + linear trained its own
    assert torch.equal(saved["random monomials"]["model"]["preprocess.projection"], fitted)
    assert not torch.equal(saved["projection + linear"]["model"]["preprocess.projection"], fitted)
    # a results row says which random monomials it measured; older runs took |.| on (-1, 1)
    assert [r.get("monomial_variables") is not None for r in rows] == [
        r["head"] == "random monomials" for r in rows]
    assert [A.rival_of(h) for h in ("linear (gap)", "MLP (paper budget)", "random monomials")] == [
        "linear", "MLP", "random monomials"]


def test_head_seeds_are_independent_and_repeatable(tmp_path):
    cf, _ = _toy_fit()
    make, _, _ = V.vinet_heads(cf, keep_per_class=2, num_classes=3)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.05)

    def heads(folder, seeds):
        return T.train_seeds(make, cf.latents, cfg, tmp_path / folder,
                             "vinet", seeds, seed=5, progress=False)

    a, b = heads("a", 2), heads("b", 3)
    # the same seed gives the same head; adding a repetition does not move the others
    assert a["acc_per_seed"] == b["acc_per_seed"][:2]
    for ha, hb in zip(a["heads"], b["heads"]):
        for (k, va), vb in zip(ha.state_dict().items(), hb.state_dict().values()):
            assert torch.equal(va, vb), k
    w = [h.linear.weight.detach() for h in b["heads"]]
    assert not torch.equal(w[0], w[1])  # repetitions differ from each other
    assert a["acc"] == pytest.approx(np.mean(a["acc_per_seed"]))
    assert a["acc_std"] == pytest.approx(np.std(a["acc_per_seed"], ddof=1))


def test_a_head_read_back_from_its_checkpoint_reports_the_time_its_training_took(tmp_path):
    """A rerun that reuses finished heads writes the same training times into the
    results files as the run that trained them, not the time it took to read them."""
    cf, _ = _toy_fit()
    make, _, _ = V.vinet_heads(cf, keep_per_class=2, num_classes=3)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.05)
    first = T.train_seeds(make, cf.latents, cfg, tmp_path, "vinet", 2, seed=5, progress=False)
    again = T.train_seeds(make, cf.latents, cfg, tmp_path, "vinet", 2, seed=5, progress=False)
    assert again["acc_per_seed"] == first["acc_per_seed"]
    assert first["wall_time_s"] > 0
    assert again["wall_time_s"] == first["wall_time_s"]
    assert first["wall_time_s"] == pytest.approx(
        sum(t for h in first["histories"] for t in h["epoch_time_s"]))


def test_vinet_counts_base_and_freezes_it():
    model = M.resnet18(10, width=0.125)
    base = M.truncate(model, "small")
    head = H.LinearHead(32, 10)
    net = V.VINet(base, head, pool="gap").train()
    counts = net.param_counts()
    assert counts["base"] == M.count_params(base) and counts["total"] == counts["base"] + counts["poly"]
    assert not any(p.requires_grad for p in net.base.parameters()) and not net.base.training
    out = net(torch.randn(4, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (4, 10) and head.linear.weight.grad is not None


class _Recorder(torch.nn.Module):
    """A conv that writes its name into ``log`` at every call."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log, self.conv = name, log, torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        self.log.append(self.name)
        return self.conv(x)


def test_throughput_is_interleaved_and_reports_mean_and_std():
    """After one warm-up pass each, every repetition times every model once, in an
    order of its own: a slow patch of the machine hits all models alike."""
    log = []
    nets = {n: _Recorder(n, log) for n in "abcd"}
    x = torch.randint(0, 255, (64, 3, 16, 16), dtype=torch.uint8)
    batches = TP.input_batches(x, (0.5,) * 3, (0.2,) * 3, batch_size=16)
    out = TP.measure(nets, batches, repeats=3, progress=False)
    assert set(out) == set(nets) and all(len(v["runs"]) == 3 for v in out.values())
    assert all(v["mean"] > 0 and v["std"] >= 0 for v in out.values())
    warm = max(2, len(batches) // 4)  # batches in a warm-up pass
    assert sorted(log[:4 * warm:warm]) == list("abcd")
    timed = log[4 * warm:]
    assert len(timed) == 3 * 4 * len(batches)
    passes = timed[::len(batches)]  # each pass calls one model once per batch
    assert all(timed[i] == passes[i // len(batches)] for i in range(len(timed)))
    rounds = [passes[i:i + 4] for i in range(0, len(passes), 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # not one fixed order
    with pytest.raises(ValueError, match="repeats must be >= 2"):
        TP.measure(nets, batches, repeats=1)


def test_a_test_split_smaller_than_a_batch_is_timed_as_one_partial_batch(capsys):
    """The synthetic data a newcomer's `make test` runs on has 200 test images, fewer
    than the paper's batch of 256: 06 times one batch of all of them and says so."""
    x = torch.randint(0, 255, (200, 3, 8, 8), dtype=torch.uint8)
    batches = TP.input_batches(x, (0.5,) * 3, (0.2,) * 3, batch_size=256, n_batches=4)
    assert [len(b) for b in batches] == [200]
    said = capsys.readouterr().out
    assert "200 images, fewer than eval_batch_size=256" in said and "n_test >= 256" in said
    nets = {"a": torch.nn.Conv2d(3, 2, 1), "b": torch.nn.Conv2d(3, 4, 1)}
    out = TP.measure(nets, batches, repeats=2, progress=False)
    assert all(v["mean"] > 0 for v in out.values())
    # a split of whole batches keeps only full ones, and says nothing
    full = TP.input_batches(x[:192].repeat(4, 1, 1, 1), (0.5,) * 3, (0.2,) * 3, batch_size=256)
    assert [len(b) for b in full] == [256, 256, 256] and capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="the test split is empty"):
        TP.input_batches(x[:0], (0.5,) * 3, (0.2,) * 3)


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
    assert df["Best without poly (%)"].isna().all()  # no notebook 05 yet
    rows = [{"variant": "tiny", "pool": "flatten", "protocol": p, "head": h, "acc": a}
            for p, h, a in (("frozen", "linear (flatten)", 80.0), ("frozen", "MLP", 86.0),
                            ("frozen", "random monomials", 99.0), ("frozen", "linear (gap)", 99.0),
                            ("end to end", "VI-Net", 87.0), ("end to end", "MLP", 88.5),
                            ("end to end", "projection + linear", 88.0))]
    write_json(tmp_path / "05_ablations.json", {"metrics": {"rows": rows}})
    df, header = table.build(tmp_path)
    tiny = df.iloc[0]
    # only heads without polynomials on the same map count as "without poly"
    assert (tiny["Best without poly (%)"], tiny["Best without poly"]) == (86.0, "MLP")
    assert (tiny["Acc end to end (%)"], tiny["Best without poly end to end (%)"]) == (87.0, 88.5)
    assert list(df["Model"]) == ["VI-Net18-Tiny", "ResNet18"]
    assert tiny["Acc (%)"] == 85.5  # notebook 04's VI-Net: 05 has no frozen VI-Net row yet
    assert df["Speed-up"].iloc[0] == pytest.approx(1.8)
    assert df["Paper Speed-up"].iloc[0] == pytest.approx(100798 / 66533)
    assert df["Acc vs baseline"].iloc[0] == pytest.approx(-4.5)
    rows.append({"variant": "tiny", "pool": "flatten", "protocol": "frozen", "head": "VI-Net",
                 "acc": 84.0, "acc_std": 0.5, "acc_per_seed": [83.5, 84.5, 84.0]})
    write_json(tmp_path / "05_ablations.json", {"metrics": {"rows": rows}})
    tiny = table.build(tmp_path)[0].iloc[0]  # 05's frozen VI-Net is the one beside its rivals
    assert (tiny["Acc (%)"], tiny["Acc std"], tiny["Seeds"]) == (84.0, 0.5, 3)
    assert tiny["Total Params"] == 100_000  # the rest stays notebook 04's
    assert "width 0.25" in header and "7 training epochs" in header and "Scaled down" in header
    md, csv = table.write(tmp_path)
    text = md.read_text()
    assert "1800 ± 20" in text and "1.80x" in text and "88.62" in text and csv.exists()


def test_every_head_goes_end_to_end_and_the_baseline_stays_untouched(synthetic_data, tmp_path):
    from vinet_utils.network import data as D
    from vinet_utils.method.ideals import fit_cut
    from vinet_utils.network.train import evaluate, image_batches

    ds = D.load_dataset("cifar10", n_train=200, n_test=100)
    torch.manual_seed(0)
    model = M.resnet18(10, width=0.125).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cf = fit_cut(model, "resnet18", "large", ds, tmp_path, pca_dim=3, samples_per_class=20,
                 psi=0.01, max_degree=2, tau=1000, oracle="ihb", seed=0, progress=False)
    assert cf.latents["train"].shape == (200, 64 * 4 * 4) and cf.pool == "flatten"
    cfg = TrainConfig(epochs=2, batch_size=50, lr=0.05)
    built = V.build_and_finetune(model, cf, ds, tmp_path, keep_per_class=3, cfg=cfg, seeds=2,
                                 train_projection=True, progress=False)
    row = built["row"]
    assert row["acc"] == pytest.approx(np.mean(row["acc_per_seed"]))
    # Poly params count the projection of the flattened map, as the paper does
    assert row["projection_params"] == 3 * 1024 + 1024 and row["poly_params"] > row["projection_params"]
    rows = A.evaluate_ablations(model, cf, ds, tmp_path, keep_per_class=3, cfg=cfg, seeds=2,
                                train_projection=True, budget_head_params=60,
                                end_to_end=TrainConfig(epochs=1, batch_size=50, lr=0.01),
                                end_to_end_seeds=1, progress=False)
    frozen = {r["head"]: r for r in rows if r["protocol"] == "frozen"}
    e2e = {r["head"]: r for r in rows if r["protocol"] == "end to end"}
    # notebook 05's VI-Net is notebook 04's, reloaded from the same checkpoints
    assert frozen["VI-Net"]["acc_per_seed"] == row["acc_per_seed"]
    assert set(e2e) == set(A.END_TO_END_HEADS) and all(r["seeds"] == 1 for r in e2e.values())
    budget = frozen["VI-Net (paper budget)"]
    assert budget["params"] - row["projection_params"] >= 60 or budget["generators"] == sum(
        m.n_generators_ for m in cf.models)
    assert frozen["MLP (paper budget)"]["params"] == pytest.approx(budget["params"], rel=0.25)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    net = V.rebuild(model, cf, ds, tmp_path, keep_per_class=3, train_projection=True)
    assert net.param_counts()["total"] == row["total_params"]
    # the rebuilt network is the fine-tuned one: it reproduces the reported accuracy
    got = evaluate(net, image_batches(ds.test_x, ds.test_y, 100, ds.mean, ds.std, "cpu"))["acc"]
    assert got == pytest.approx(row["acc_per_seed"][0], abs=1.0)  # float16 latents vs float32
    # a second call reuses every checkpoint, end to end included: the same numbers
    again = A.evaluate_ablations(model, cf, ds, tmp_path, keep_per_class=3, cfg=cfg, seeds=2,
                                 train_projection=True, budget_head_params=60,
                                 end_to_end=TrainConfig(epochs=1, batch_size=50, lr=0.01),
                                 end_to_end_seeds=1, progress=False)
    assert [r["acc_per_seed"] for r in again] == [r["acc_per_seed"] for r in rows]


def test_budget_keeps_the_fewest_generators_that_reach_the_budget(tmp_path):
    from vinet_utils.method.ideals import fit_latents

    g = torch.Generator().manual_seed(0)
    t = torch.rand(300, generator=g) * 2 * torch.pi  # a closed curve: quadrics vanish on it
    curve = torch.stack([t.cos(), t.sin(), (2 * t).cos(), (2 * t).sin()], 1)
    z = curve @ torch.randn(4, 12, generator=g) + 0.01 * torch.randn(300, 12, generator=g)
    lat = {"train": z, "train_y": torch.arange(300) % 3, "test": z[:30],
           "test_y": torch.arange(30) % 3, "key": {"synthetic": 1}}
    cf = fit_latents(lat, "tiny", "layer1", "flatten", 3, tmp_path, pca_dim=4,
                     samples_per_class=80, psi=0.05, max_degree=2, tau=1000, oracle="ihb",
                     seed=0, progress=False)

    def beyond(k):
        head, _ = V.poly_head(cf, k, 3)
        return head.count_params() - head.preprocess.count_params()

    most = max(m.n_generators_ for m in cf.models)
    assert most >= 4
    budget = beyond(3)
    k = A.budget_keep_per_class(cf, budget, 3)
    assert beyond(k) >= budget and (k == 1 or beyond(k - 1) < budget)
    assert A.budget_keep_per_class(cf, 10**9, 3) == most


def test_random_monomials_are_exact_products_of_unit_cube_coordinates_with_finite_gradients():
    pre = L.Preprocess(6, 4)
    head = H.RandomMonomialHead(pre, [1, 2, 2, 3, 1], num_classes=3, seed=5)
    z = torch.randn(40, 6, dtype=torch.float32)
    u = (pre(z) + 1) / 2
    assert (u > 0).all() and (u < 1).all()
    expected = torch.stack([u[:, [i for i in row if i < 4]].prod(1)
                            for row in head.factors.tolist()], 1)
    head.eval()
    got = head.norm(expected)
    torch.testing.assert_close(head.linear(got), head(z))
    assert head.exponents.sum(1).tolist() == [1, 2, 2, 3, 1]
    # a coordinate at exactly zero: the log-free product keeps every gradient finite
    z0 = torch.zeros(8, 6, requires_grad=True)
    head.train()
    head(z0).sum().backward()
    assert torch.isfinite(z0.grad).all()


def test_random_monomials_keep_the_sign_of_each_coordinate():
    """On (-1, 1), |u_i u_j| is the same at u and -u; on the unit cube it is not."""
    pre = L.Preprocess(6, 4).fit(torch.randn(200, 6))
    head = H.RandomMonomialHead(pre, [2] * 10, num_classes=3, seed=1).eval()
    z = torch.randn(50, 6)
    mirrored = 2 * pre.mean - z  # projects to -u
    torch.testing.assert_close(pre(mirrored), -pre(z), atol=1e-5, rtol=0)
    feats = lambda x: torch.cat([head.coordinates(x), torch.ones(len(x), 1)], 1)[:, head.factors].prod(-1)
    assert (feats(z) - feats(mirrored)).abs().max() > 0.1


def test_random_monomials_of_one_degree_are_distinct_until_they_run_out():
    # 4 variables have 10 monomials of degree 2 and 4 of degree 1
    f = H.draw_monomials(4, [2] * 10 + [1] * 3, seed=3)
    deg2 = {tuple(r[:2]) for r in f[:10].tolist()}
    assert len(deg2) == 10 and all(a <= b for a, b in deg2)
    assert len({r[0] for r in f[10:].tolist()}) == 3 and (f[10:, 1] == 4).all()
    # asked for 25 of the 10: every monomial at least twice, none three times
    counts = torch.unique(H.draw_monomials(4, [2] * 25, seed=3), dim=0, return_counts=True)[1]
    assert len(counts) == 10 and counts.min() >= 2 and counts.max() <= 3
    # the seed decides the draw, and the order of degrees is kept
    assert torch.equal(H.draw_monomials(5, [1, 2, 2], seed=7), H.draw_monomials(5, [1, 2, 2], seed=7))
    assert (H.draw_monomials(5, [1, 2, 2], seed=7)[0, 1:] == 5).all()


def test_a_cached_head_with_other_monomials_is_not_reused():
    pre = L.Preprocess(6, 4)
    a = H.RandomMonomialHead(pre, [2] * 5, num_classes=3, seed=1)
    b = copy.deepcopy(a)
    b.factors.copy_(b.factors.flip(0))  # the same indices in another order: the same sum
    assert not torch.equal(a.factors, b.factors)
    assert T.init_key(a) != T.init_key(b)
    assert T.init_key(a) == T.init_key(copy.deepcopy(a))


def test_saturation_tells_a_stuck_projection_from_a_working_one():
    torch.manual_seed(0)
    z = torch.randn(500, 16)
    pre = L.Preprocess(16, 4).fit(z)
    head = H.ProjectionHead(pre, 3)
    working = A.saturation(head, z)
    with torch.no_grad():
        pre.projection.mul_(100.0)  # what a diverging projection looks like
    stuck = A.saturation(head, z)
    assert working < 0.05 and stuck > 0.9
    assert A.saturation(H.LinearHead(16, 3), z) is None


def test_projection_modes_train_what_they_say():
    """train_projection: False freezes, True trains with the head, "slow" trains at a
    tenth of its learning rate, "normalized" keeps tanh's inputs standardised."""
    torch.manual_seed(0)
    z = torch.randn(400, 16) @ torch.randn(16, 16)
    fitted = L.Preprocess(16, 4).fit(z)
    frozen = H.ProjectionHead(copy.deepcopy(fitted).trainable(False), 3)
    assert not any(p.requires_grad for p in frozen.preprocess.parameters())
    trained = H.ProjectionHead(copy.deepcopy(fitted).trainable(True), 3)
    slow = H.ProjectionHead(copy.deepcopy(fitted).trainable("slow"), 3)
    cfg = TrainConfig(epochs=1, lr=0.2, weight_decay=1e-3)
    groups = T._param_groups(slow, [p for p in slow.parameters() if p.requires_grad], cfg)
    rates = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert rates[id(slow.preprocess.projection)] == (pytest.approx(0.2 * L.SLOW_PROJECTION_LR), 1e-3)
    assert rates[id(slow.preprocess.mean)] == (pytest.approx(0.2 * L.SLOW_PROJECTION_LR), 0.0)
    assert rates[id(slow.linear.weight)] == (0.2, 1e-3) and rates[id(slow.linear.bias)] == (0.2, 0.0)
    plain = T._param_groups(trained, [p for p in trained.parameters() if p.requires_grad], cfg)
    assert [(g["lr"], g["weight_decay"]) for g in plain] == [(0.2, 1e-3), (0.2, 0.0)]
    # the same weights at another rate are another run: their checkpoints are not shared
    assert T.init_key(slow) != T.init_key(trained)
    # normalized: the identity on the fitted components at first, then tanh's inputs
    # stay standardised however large the projection grows
    norm = copy.deepcopy(fitted).trainable("normalized").eval()
    torch.testing.assert_close(norm(z), fitted(z))
    with torch.no_grad():
        norm.projection.mul_(100.0), fitted.projection.mul_(100.0)
    norm.train()
    norm(z)  # batch statistics, as in training
    assert (norm(z).abs() > 0.99).float().mean() < 0.05
    assert (fitted(z).abs() > 0.99).float().mean() > 0.9
    with pytest.raises(ValueError, match="train_projection must be one of False, True, 'slow'"):
        L.Preprocess(16, 4).trainable("fast")


def test_inference_copies_give_their_networks_outputs():
    """inference.prepare folds every BatchNorm and reads the channels-last map without a
    copy: the full ResNet and a VI-Net on the flattened map give the same outputs."""
    from vinet_utils.method import inference as I
    from vinet_utils.method.polynomial import PolynomialLayer

    torch.manual_seed(0)
    model = M.build("resnet18", 10, 3, 0.25)
    for m in model.modules():  # non-trivial statistics, so that folding them matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    base = M.truncate(model, "tiny")
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    d = base(x).flatten(1).shape[1]
    pre = L.Preprocess(d, 4)
    pre.projection.data = torch.randn(d, 4) / d ** 0.5
    pre.mean.data = torch.randn(d)
    exps = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
    head = H.PolyHead(pre, PolynomialLayer(exps, np.random.default_rng(0).normal(size=(5, 3))).float(), 10)
    head.norm.running_mean.uniform_(0, 1), head.norm.running_var.uniform_(0.5, 2)
    net = V.VINet(base, head).eval()
    for original in (model, net):
        with torch.no_grad():
            want = original(x)
            fast = I.prepare(original)
            got = fast(x)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        with torch.no_grad():
            torch.testing.assert_close(I.compiled(fast, x)(x), want, rtol=1e-4, atol=1e-4)
    assert isinstance(I.prepare(net), I.FlatVINet)
    # a normalising BatchNorm before tanh folds into the projection as well
    pre.trainable("normalized")
    pre.norm.running_mean.uniform_(-0.3, 0.3), pre.norm.running_var.uniform_(0.5, 2.0)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(I.prepare(net)(x), net(x), rtol=1e-4, atol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # left as it was


def test_each_model_counts_in_its_faster_form():
    speed = {"a": {"mean": 10.0}, "a [torchscript]": {"mean": 12.0},
             "b": {"mean": 9.0}, "b [torchscript]": {"mean": 7.0}}
    best = TP.fastest(speed)
    assert best == {"a": {"mean": 12.0, "form": "torchscript"}, "b": {"mean": 9.0, "form": "eager"}}


def test_latents_beyond_half_precision_stop_with_a_clear_error(synthetic_data, tmp_path):
    """A diverged baseline's activations overflow the float16 cache: the error says so
    instead of a failed SVD further on."""
    from vinet_utils.network import data as D

    ds = D.load_dataset("cifar10", n_train=40, n_test=20)
    model = M.build("resnet18", 10, 3, 0.25).eval()
    with torch.no_grad():
        model.conv1.weight.mul_(1e6)
    with pytest.raises(FloatingPointError, match="not all finite.*diverged"):
        L.cached_latents(model, "resnet18", "tiny", ds, tmp_path, progress=False)
    assert not (tmp_path / "latents").exists() or not any((tmp_path / "latents").iterdir())


def test_the_breakdown_splits_a_vinet_s_time_between_its_base_and_its_head():
    """throughput.breakdown times a VI-Net beside its base alone and counts both: the
    head's FLOPs are what the head adds, the shares are speed-up over FLOP limit, and
    the head's share of the time is what the base alone does not take."""
    from torch import nn
    from vinet_utils.experiments import throughput

    class Net(nn.Module):
        def __init__(self, base, head):
            super().__init__()
            self.base, self.head = base, head

        def forward(self, x):
            return self.tail(self.base(x))

        def tail(self, m):
            return self.head(m.flatten(1))

    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    full = nn.Sequential(conv, nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 64, 10))
    head = nn.Sequential(nn.Linear(8 * 64, 512), nn.ReLU(), nn.Linear(512, 512), nn.Linear(512, 10))
    nets = {"ResNet (full)": full, "VI-Net tiny": Net(conv, head)}
    batches = [torch.randn(64, 3, 8, 8) for _ in range(3)]
    out = throughput.breakdown(nets, batches, repeats=2)
    r = out["cuts"]["tiny"]
    fl = out["flops_per_image"]
    assert set(out["throughput"]) == {"ResNet (full)", "VI-Net tiny", "base tiny"}
    assert r["head_flop_fraction"] == pytest.approx(1 - fl["base tiny"] / fl["VI-Net tiny"])
    assert fl["VI-Net tiny"] - fl["base tiny"] == 2 * (8 * 64 * 512 + 512 * 512 + 512 * 10)
    assert r["flop_limit"] == pytest.approx(fl["ResNet (full)"] / fl["VI-Net tiny"])
    for p in ("", "base_"):
        assert r[f"{p}share_of_limit"] == pytest.approx(r[f"{p}speedup"] / r[f"{p}flop_limit"])
    assert r["us_per_image"] > 0 and r["base_us_per_image"] > 0 and r["head_us_per_image"] > 0
    assert r["head_time_fraction"] == pytest.approx(
        r["head_us_per_image"] / (r["base_us_per_image"] + r["head_us_per_image"]))
    assert out["head_batches"] == 3


def test_time_heads_times_the_head_alone_on_its_bases_maps():
    """A head that does much more work than another takes more time per image, and a
    head is run on what its base made: a net whose tail would fail on the raw images
    is timed without error."""
    from torch import nn
    from vinet_utils.experiments import throughput

    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.base = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Sequential(nn.Linear(4 * 64, width), nn.Linear(width, 10))

        def tail(self, m):
            assert m.shape[1] == 4  # the base's map, not an image
            return self.head(m.flatten(1))

    torch.manual_seed(0)
    batches = [torch.randn(128, 3, 8, 8) for _ in range(4)]
    # about 2,000 times the work per image: a pass of the large head takes long enough
    # that no pause of a machine busy with other work turns the order round
    us = throughput.time_heads({"small": Net(8), "large": Net(16384)}, batches, repeats=3)
    assert set(us) == {"small", "large"}
    assert 0 < us["small"] < us["large"]
