"""A dataset on disk that is damaged is reported as damaged, naming the file, and not as
"not found": torchvision's md5 check really runs here (no ``VINET_SYNTHETIC_DATA``)."""

import shutil

import pytest
import torchvision.datasets as tvd
from torchvision.datasets.utils import calculate_md5

from vinet_utils.network import data as D


@pytest.fixture
def checked_cifar10(synthetic_root, tmp_path, monkeypatch):
    """A copy of the synthetic CIFAR-10 folder whose files torchvision's md5 check
    accepts: its file lists are pointed at the md5s of the synthetic files, so that
    the loader runs exactly as it does on the official archive."""
    monkeypatch.delenv("VINET_SYNTHETIC_DATA", raising=False)
    monkeypatch.delenv("VINET_DATA_DIR", raising=False)
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "cifar-10-batches-py", root / "cifar-10-batches-py")
    folder = root / "cifar-10-batches-py"

    def md5s(entries):
        return [[name, calculate_md5(str(folder / name))] for name, _ in entries]

    monkeypatch.setattr(tvd.CIFAR10, "train_list", md5s(tvd.CIFAR10.train_list))
    monkeypatch.setattr(tvd.CIFAR10, "test_list", md5s(tvd.CIFAR10.test_list))
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta,
                                              "md5": calculate_md5(str(folder / "batches.meta"))})

    def no_network(*args, **kwargs):
        raise AssertionError("a damaged folder must not be downloaded over")

    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", no_network)
    return root


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return len(data)


def test_the_intact_copy_loads_with_md5_checks_on(checked_cifar10):
    ds = D.load_dataset("cifar10", checked_cifar10, download=False)
    assert len(ds.train_x) == 400 and len(ds.test_x) == 200


@pytest.mark.parametrize("download", [False, True])
def test_a_truncated_batch_is_named_as_damaged_not_as_missing(checked_cifar10, download):
    bad = checked_cifar10 / "cifar-10-batches-py" / "data_batch_1"
    _truncate(bad)
    with pytest.raises(D.DataCheckError) as err:
        D.load_dataset("cifar10", checked_cifar10, download=download)
    msg = str(err.value)
    assert not isinstance(err.value, D.DataNotFoundError)
    assert "not found" not in msg
    assert f"{bad} failed its md5 checksum" in msg and "damaged" in msg
    assert "data_batch_2" not in msg  # only the damaged file is named
    assert "Delete" in msg and "download it again" in msg and "copy it again" in msg
    assert bad.exists()  # left for the reader to inspect; nothing written over it


def test_a_damaged_test_batch_is_named_when_only_the_test_split_is_read(checked_cifar10):
    bad = checked_cifar10 / "cifar-10-batches-py" / "test_batch"
    _truncate(bad, keep=0.9)
    with pytest.raises(D.DataCheckError, match="test_batch failed its md5 checksum"):
        D.load_dataset("cifar10", checked_cifar10, download=False)


def test_a_truncated_file_is_named_even_with_md5_checks_off(checked_cifar10, monkeypatch):
    """Synthetic test data turns the md5 checks off; a truncated file then fails to
    unpickle, and that too names the file."""
    monkeypatch.setenv("VINET_SYNTHETIC_DATA", "1")
    bad = checked_cifar10 / "cifar-10-batches-py" / "data_batch_1"
    _truncate(bad)
    with pytest.warns(UserWarning, match="md5 checks are off"), \
            pytest.raises(D.DataCheckError, match="data_batch_1 cannot be read") as err:
        D.load_dataset("cifar10", checked_cifar10, download=False)
    assert "damaged" in str(err.value) and "data_batch_2" not in str(err.value)


def test_a_partial_copy_says_which_files_it_lacks(checked_cifar10):
    (checked_cifar10 / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(D.DataNotFoundError, match="is there but lacks data_batch_3"):
        D.load_dataset("cifar10", checked_cifar10, download=False)
