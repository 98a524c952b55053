import pytest
import torch

from vinet_utils.network import data as D, models as M, train as T
from vinet_utils.common.results import read_json


def _setup(seed=0):
    torch.manual_seed(seed)
    return M.resnet18(10, width=0.125)


def test_training_learns_and_writes_a_complete_record(synthetic_data, tmp_path):
    ds = D.load_dataset("cifar10", n_train=400, n_test=200)
    model = _setup()
    cfg = T.TrainConfig(epochs=4, batch_size=32, lr=0.1, seed=0)
    rec = T.train_classifier(model, ds, cfg, tmp_path, params={"width": 0.125}, progress=False)
    on_disk = read_json(tmp_path / "01_baseline.json")
    assert on_disk["metrics"]["test_acc"] == rec["metrics"]["test_acc"]
    assert rec["metrics"]["test_acc"] > 30.0  # chance is 10%; the synthetic blobs are easy
    for key in ("params", "torch_version", "device", "git_commit", "wall_time_s", "history",
                "train_config", "created_utc", "torch_threads"):
        assert key in on_disk, key
    assert len(on_disk["history"]["test_acc"]) == 4 and on_disk["finished"] is True


def test_interrupted_run_resumes_to_the_same_weights(synthetic_data, tmp_path):
    ds = D.load_dataset("cifar10", n_train=200, n_test=100)
    cfg = T.TrainConfig(epochs=3, batch_size=50, lr=0.1, seed=4)
    straight = _setup()
    T.train_classifier(straight, ds, cfg, tmp_path / "a", progress=False)

    class Stop(Exception):
        pass

    model = _setup()
    calls = {"n": 0}
    original = T.image_batches

    def flaky(*args, **kwargs):
        if kwargs.get("train"):
            calls["n"] += 1
            if calls["n"] == 3:  # die at the start of the third epoch
                raise Stop
        return original(*args, **kwargs)

    T.image_batches = flaky
    try:
        T.train_classifier(model, ds, cfg, tmp_path / "b", progress=False)
    except Stop:
        pass
    finally:
        T.image_batches = original
    assert torch.load(tmp_path / "b" / "01_baseline.ckpt", weights_only=False)["epoch"] == 2
    resumed = _setup(seed=99)  # a different init: everything must come from the checkpoint
    rec = T.train_classifier(resumed, ds, cfg, tmp_path / "b", progress=False)
    assert rec["history"]["epoch"] == [1, 2, 3]
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-5)


def test_finished_run_is_reused_not_retrained(synthetic_data, tmp_path, capsys):
    ds = D.load_dataset("cifar10", n_train=100, n_test=50)
    cfg = T.TrainConfig(epochs=1, batch_size=50, seed=0)
    first = T.train_classifier(_setup(), ds, cfg, tmp_path, progress=False)
    again = T.train_classifier(_setup(seed=5), ds, cfg, tmp_path, progress=False)
    assert "reusing the finished run" in capsys.readouterr().out
    assert again["created_utc"] == first["created_utc"]


def test_one_cycle_schedule_shape():
    f = [T.lr_factor(s, 100, "onecycle", 0.2) for s in range(101)]
    assert f[0] == 0 and abs(f[20] - 1) < 1e-9 and f[100] == 0
    assert all(a <= b for a, b in zip(f[:20], f[1:21]))
    c = [T.lr_factor(s, 100, "cosine", 0.0) for s in (0, 50, 100)]
    assert abs(c[0] - 1) < 1e-9 and abs(c[1] - 0.5) < 1e-9 and abs(c[2]) < 1e-9


def test_lr_stated_at_one_batch_size_scales_linearly_with_another():
    assert T.scaled_lr(0.4, 512, 512) == 0.4
    assert T.scaled_lr(0.4, 100, 512) == pytest.approx(0.4 * 100 / 512)
    assert T.scaled_lr(0.4, 1024, 512) == pytest.approx(0.8)
    assert T.scaled_lr(0.3, 100, None) == 0.3  # an lr given for this batch size


def test_a_diverging_training_stops_at_once_naming_lr_and_batch_size(synthetic_data, tmp_path):
    ds = D.load_dataset("cifar10", n_train=200, n_test=50)
    cfg = T.TrainConfig(epochs=3, batch_size=50, lr=1e9, schedule="constant", seed=0)
    seen = []
    original = T.image_batches

    def counting(*args, **kwargs):
        for b in original(*args, **kwargs):
            if kwargs.get("train"):
                seen.append(1)
            yield b

    T.image_batches = counting
    try:
        with pytest.raises(T.TrainingDiverged) as err:
            T.train_classifier(_setup(), ds, cfg, tmp_path, progress=False)
    finally:
        T.image_batches = original
    msg = str(err.value)
    assert "lr=1e+09" in msg and "batch_size=50" in msg and "epoch 1" in msg
    assert len(seen) < 4  # stopped within the first epoch (4 batches), not after it
    assert not (tmp_path / "01_baseline.json").exists()


def test_a_training_split_smaller_than_one_batch_stops_before_any_work(synthetic_data, tmp_path):
    ds = D.load_dataset("cifar10", n_train=100, n_test=50)
    cfg = T.TrainConfig(epochs=1, batch_size=128, lr=0.1, seed=0)
    with pytest.raises(ValueError, match=r"batch_size=128 is larger than the training split "
                                         r"\(100 images\).*batch_size <= 100"):
        T.train_classifier(_setup(), ds, cfg, tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_a_baseline_leaves_half_precision_weights_that_a_clone_can_use(synthetic_data, tmp_path,
                                                                       monkeypatch):
    ds = D.load_dataset("cifar10", n_train=200, n_test=100)
    cfg = T.TrainConfig(epochs=2, batch_size=50, lr=0.1, seed=0)
    monkeypatch.setattr(T, "WEIGHTS_PART_BYTES", 100_000)  # several files even for a tiny net
    rec = T.train_classifier(_setup(), ds, cfg, tmp_path, params={"width": 0.125,
                             "arch": "resnet18"}, progress=False)
    files = T.weights_files(tmp_path)
    assert len(files) > 1 and [f.name for f in files] == rec["weights_files"]
    for f in files:  # each file within the limit, beyond a small pickle overhead
        assert f.stat().st_size < 100_000 + 20_000
    # what a clone has: the results file and the weights, no checkpoint
    (tmp_path / "01_baseline.ckpt").unlink()
    model, base = T.load_baseline(tmp_path)
    acc = T.evaluate(model, T.image_batches(ds.test_x, ds.test_y, 100, ds.mean, ds.std, "cpu"))["acc"]
    assert abs(acc - base["metrics"]["test_acc"]) <= 1.0  # at most one of the 100 test images differs
    again = T.train_classifier(_setup(1), ds, cfg, tmp_path,
                               params={"width": 0.125, "arch": "resnet18"}, progress=False)
    assert again["created_utc"] == rec["created_utc"]  # reused, not retrained
    assert not (tmp_path / "01_baseline.ckpt").exists()


def test_the_lr_note_says_when_the_lr_was_scaled():
    assert T.lr_note(0.4, 512, 512) == "batch 512 at lr 0.4"
    note = T.lr_note(0.4, 128, 512)
    assert note.startswith("batch 128 at lr 0.1 ") and "stated at batch 512" in note


def test_a_head_trained_on_another_bases_latents_is_never_reused(synthetic_data, tmp_path):
    """A head's checkpoint is keyed by the base and data its latents came from: after the
    base is retrained in the same folder, the same head (same tag, same initial weights)
    trains again instead of coming back from the old base's checkpoint."""
    from vinet_utils.method import latents as L
    from vinet_utils.method.heads import LinearHead

    ds = D.load_dataset("cifar10", n_train=200, n_test=100)
    cfg = T.TrainConfig(epochs=2, lr=0.05, batch_size=50)

    def head_on(base_seed):
        torch.manual_seed(base_seed)  # another base: other weights, the same shapes
        base = M.resnet18(10, width=0.125).eval()
        lat = L.cached_latents(base, "resnet18", "tiny", ds, tmp_path, "gap", progress=False)
        return T.train_seeds(lambda: LinearHead(lat["train"].shape[1], 10), lat, cfg, tmp_path,
                             "linear", 1, 0, progress=False)

    first, again, other = head_on(0), head_on(0), head_on(1)
    # the same base: the finished head comes back as it was (its own epoch times)
    assert again["histories"][0]["epoch_time_s"] == first["histories"][0]["epoch_time_s"]
    # a retrained base: trained anew, on its own latents
    assert other["histories"][0]["epoch_time_s"] != first["histories"][0]["epoch_time_s"]
    w_first, w_other = (r["heads"][0].linear.weight for r in (first, other))
    assert not torch.allclose(w_first, w_other)
