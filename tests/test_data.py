import numpy as np
import pytest
import torch

from vinet_utils.network import copies, data as D


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


def test_fingerprint_ignores_order_but_not_content():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.arange(50) % 5
    perm = torch.randperm(50, generator=g)
    base = D.fingerprint([(x.numpy(), y.numpy())])
    assert D.fingerprint([(x[perm].numpy(), y[perm].numpy())]) == base
    pixel = x.clone()
    pixel[7, 1, 2, 3] ^= 1
    assert D.fingerprint([(pixel.numpy(), y.numpy())]) != base
    label = y.clone()
    label[7] = (label[7] + 1) % 5
    assert D.fingerprint([(x.numpy(), label.numpy())]) != base


def test_loaded_data_records_its_source_and_a_fingerprint_of_the_whole_split(synthetic_data):
    a = D.load_dataset("cifar10", n_train=100, n_test=30, seed=1)
    b = D.load_dataset("cifar10", n_train=50, n_test=30, seed=2)
    assert a.source.startswith("torchvision archive cifar-10-batches-py")
    assert a.fingerprint.startswith("sha256:") and a.fingerprint == b.fingerprint
    assert a.provenance()["n_train"] == 100
    assert D.load_dataset("cifar100").fingerprint != a.fingerprint


# -- CIFAR-100 as a class-folder PNG tree -------------------------------------------------
# A small tree (3 classes, 4 training and 2 test images each) stands in for the real one:
# the expected shape and statistics are patched to what such a tree should have.

SHAPE = ("cifar-100-png", 3, 4, 2, 32)
CLASSES = ["zebra", "apple", "maple_tree"]  # written unsorted: labels follow sorted names


def _write_tree(root, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    tree = root / "cifar-100-png"
    for split, n in (("train", 4), ("test", 2)):
        for k, cls in enumerate(CLASSES):
            folder = tree / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                img[..., 0] = np.clip(img[..., 0].astype(int) // 2 + 40 * k, 0, 255)  # class shade
                Image.fromarray(img).save(folder / f"{cls}_{i:03d}.png")
    return tree


def _tree_stats(tree):
    from PIL import Image
    px = np.stack([np.asarray(Image.open(p)) for p in sorted(tree.glob("train/*/*.png"))])
    px = px.reshape(-1, 3) / 255.0
    return px.mean(0), px.std(0)


@pytest.fixture
def png_tree(tmp_path, monkeypatch):
    monkeypatch.delenv("VINET_DATA_DIR", raising=False)
    monkeypatch.setitem(D.PNG_TREES, "cifar100", SHAPE)
    tree = _write_tree(tmp_path)
    mean, std = _tree_stats(tree)
    # the "published" statistics, within the tolerance of the tree's own
    monkeypatch.setitem(D.STATS, "cifar100", (tuple(mean + 5e-4), tuple(std - 5e-4)))
    return tree


def test_png_tree_is_read_with_labels_from_sorted_class_names(png_tree):
    from PIL import Image
    ds = D.load_dataset("cifar100", png_tree.parent, download=False)
    assert ds.classes == sorted(CLASSES) and ds.source == "PNG tree cifar-100-png/"
    assert tuple(ds.train_x.shape) == (12, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.train_y.bincount().tolist() == [4, 4, 4] and ds.test_y.bincount().tolist() == [2, 2, 2]
    first = Image.open(png_tree / "train" / "apple" / "apple_000.png")
    i = int(torch.nonzero(ds.train_y == 0)[0])
    assert torch.equal(ds.train_x[i], torch.from_numpy(np.asarray(first)).permute(2, 0, 1))
    # the fingerprint is that of the same images and labels in any order
    perm = np.random.default_rng(1).permutation(12)
    assert ds.fingerprint == D.fingerprint([(ds.train_x.numpy()[perm], ds.train_y.numpy()[perm]),
                                            (ds.test_x.numpy(), ds.test_y.numpy())])


def test_png_tree_is_decoded_once_and_the_cache_follows_the_tree(png_tree, monkeypatch):
    first = D.load_dataset("cifar100", png_tree.parent, download=False)
    assert len(list(png_tree.parent.glob("cifar-100-png.decoded-*.npz"))) == 1

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(copies, "_decode_pngs", no_decoding)
    again = D.load_dataset("cifar100", png_tree.parent, download=False)
    assert torch.equal(first.train_x, again.train_x) and first.fingerprint == again.fingerprint
    # another tree (one image replaced by a larger file) is not served from that cache
    from PIL import Image
    Image.new("RGB", (32, 32), (255, 0, 0)).save(png_tree / "test" / "apple" / "apple_000.png",
                                                 compress_level=0)
    with pytest.raises(AssertionError, match="decoded again"):
        D.load_dataset("cifar100", png_tree.parent, download=False)


def test_png_tree_with_a_missing_class_is_refused(png_tree):
    import shutil
    shutil.rmtree(png_tree / "test" / "zebra")
    with pytest.raises(D.DataCheckError, match="should hold 3 class folders, found 2") as err:
        D.load_dataset("cifar100", png_tree.parent, download=False)
    assert str(png_tree / "test") in str(err.value)


def test_png_tree_with_a_wrong_count_is_refused(png_tree):
    (png_tree / "train" / "maple_tree" / "maple_tree_002.png").unlink()
    with pytest.raises(D.DataCheckError, match="should hold 4 PNG images, found 3") as err:
        D.load_dataset("cifar100", png_tree.parent, download=False)
    assert str(png_tree / "train" / "maple_tree") in str(err.value)


def test_png_tree_with_the_wrong_statistics_is_refused(png_tree, monkeypatch):
    mean, std = D.STATS["cifar100"]
    monkeypatch.setitem(D.STATS, "cifar100", (tuple(m + 3e-3 for m in mean), std))
    with pytest.raises(D.DataCheckError, match="channel means") as err:
        D.load_dataset("cifar100", png_tree.parent, download=False)
    assert str(png_tree / "train") in str(err.value) and "tolerance 0.001" in str(err.value)
    assert not list(png_tree.parent.glob("*.npz"))  # nothing cached from a refused tree


def test_png_tree_with_an_image_of_the_wrong_size_is_refused(png_tree):
    from PIL import Image
    bad = png_tree / "train" / "apple" / "apple_001.png"
    Image.new("RGB", (28, 28)).save(bad)
    with pytest.raises(D.DataCheckError, match="28x28 RGB, not 32x32 RGB") as err:
        D.load_dataset("cifar100", png_tree.parent, download=False)
    assert str(bad) in str(err.value)


def test_the_archive_wins_over_a_png_tree(png_tree, synthetic_root, monkeypatch):
    import shutil
    monkeypatch.setenv("VINET_SYNTHETIC_DATA", "1")
    shutil.copytree(synthetic_root / "cifar-100-python", png_tree.parent / "cifar-100-python")
    ds = D.load_dataset("cifar100", png_tree.parent, download=False)
    assert ds.source.startswith("torchvision archive") and ds.num_classes == 100


def test_a_packed_copy_travels_in_parts_and_unpacks_to_the_same_data(synthetic_data, tmp_path,
                                                                     monkeypatch):
    original = D.load_dataset("cifar10")
    parts = D.pack("cifar10", None, tmp_path, part_bytes=100_000)
    assert len(parts) > 1 and all(p.stat().st_size <= 100_000 for p in parts)
    monkeypatch.delenv("VINET_SYNTHETIC_DATA")
    packed = D.load_dataset("cifar10", tmp_path, download=False)  # no archive there
    assert packed.source.startswith("packed copy cifar10-packed/")
    assert packed.fingerprint == original.fingerprint and packed.classes == original.classes
    assert torch.equal(packed.train_x, original.train_x) and torch.equal(packed.test_y, original.test_y)
    parts[-1].unlink()
    with pytest.raises(D.DataCheckError, match=f"lacks {parts[-1].name}"):
        D.load_dataset("cifar10", tmp_path, download=False)
