import torch

from vinet_utils import data as D, models as M, train as T
from vinet_utils.results import read_json


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
