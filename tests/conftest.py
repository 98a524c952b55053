import pytest
import torch

from vinet_utils.workflow import synthetic


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """CIFAR-10, CIFAR-100 and Fashion-MNIST in torchvision's on-disk formats."""
    root = tmp_path_factory.mktemp("data")
    synthetic.write_cifar(root, 10, n_train=400, n_test=200)
    synthetic.write_cifar(root, 100, n_train=400, n_test=200)
    synthetic.write_fashion_mnist(root, n_train=400, n_test=200)
    return root


@pytest.fixture
def synthetic_data(synthetic_root, monkeypatch):
    monkeypatch.setenv("VINET_SYNTHETIC_DATA", "1")
    monkeypatch.setenv("VINET_DATA_DIR", str(synthetic_root))
    return synthetic_root


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
