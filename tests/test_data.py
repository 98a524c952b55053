import pytest
import torch

from vinet_utils import data as D


@pytest.mark.parametrize("name,classes,shape", [("cifar10", 10, (3, 32, 32)),
                                                ("cifar100", 100, (3, 32, 32)),
                                                ("fashionmnist", 10, (1, 28, 28))])
def test_loads_each_dataset_through_torchvision(synthetic_data, name, classes, shape):
    ds = D.load_dataset(name)
    assert ds.num_classes == classes and ds.train_x.dtype == torch.uint8
    assert tuple(ds.train_x.shape[1:]) == shape and len(ds.train_x) == 400
    assert len(ds.test_y) == 200 and len(ds.mean) == shape[0]


def test_subsets_are_stratified_and_seeded(synthetic_data):
    a = D.load_dataset("cifar10", n_train=100, n_test=30, seed=1)
    b = D.load_dataset("cifar10", n_train=100, n_test=30, seed=1)
    c = D.load_dataset("cifar10", n_train=100, n_test=30, seed=2)
    assert torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_y.bincount().tolist() == [10] * 10
    assert a.test_y.bincount().tolist() == [3] * 10


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("VINET_DATA_DIR", raising=False)
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(D.DataNotFoundError) as err:
        D.load_dataset("cifar100", tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "cifar-100-python") in msg and "VINET_DATA_DIR" in msg


def test_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("VINET_DATA_DIR", str(tmp_path))
    assert D.resolve_data_dir() == tmp_path
    assert D.resolve_data_dir("elsewhere") == D.Path("elsewhere")
    monkeypatch.delenv("VINET_DATA_DIR")
    assert D.resolve_data_dir().name == "data"


def test_bad_dataset_name():
    with pytest.raises(ValueError, match="dataset must be one of cifar10, cifar100, fashionmnist"):
        D.load_dataset("mnist")


def test_augment_is_a_translation_or_flip_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = D.augment(x, g)
    assert out.shape == (64, 3, 32, 32)
    padded = torch.nn.functional.pad(x.float(), (4,) * 4, mode="reflect")
    for i in range(64):
        found = any(torch.equal(out[i], cand)
                    for dy in range(9) for dx in range(9)
                    for crop in [padded[i, :, dy:dy + 32, dx:dx + 32]]
                    for cand in (crop, crop.flip(-1)))
        assert found, i
    # over a batch of 64 both flips and several offsets occur
    assert sum(torch.equal(out[i], x[i].float()) for i in range(64)) < 20


def test_batches_normalise_and_cover_the_split():
    x = torch.full((10, 3, 4, 4), 255, dtype=torch.uint8)
    y = torch.arange(10)
    seen = []
    for xb, yb in D.batches(x, y, 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), shuffle=True, seed=3):
        assert torch.allclose(xb, torch.full_like(xb, 2.0))
        seen += yb.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    assert D.n_batches(10, 4) == 3 and D.n_batches(10, 4, drop_last=True) == 2
