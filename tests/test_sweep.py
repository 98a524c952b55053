"""The hyperparameter sweep sees only the training split."""

import pytest
import torch

from vinet_utils.experiments import sweep


def test_validation_split_is_stratified_disjoint_and_seeded():
    y = torch.arange(10).repeat_interleave(50)
    fit, val = sweep.validation_split(y, 0.1, seed=3)
    assert len(set(fit.tolist()) & set(val.tolist())) == 0 and len(fit) + len(val) == 500
    assert torch.bincount(y[val]).tolist() == [5] * 10
    again, _ = sweep.validation_split(y, 0.1, seed=3)
    other, _ = sweep.validation_split(y, 0.1, seed=4)
    assert torch.equal(again, fit) and not torch.equal(other, fit)
    with pytest.raises(ValueError, match="val_frac must be between 0 and 1"):
        sweep.validation_split(y, 1.5, seed=0)


@pytest.mark.parametrize("holdout_frac", [0.1, 0.0])
def test_the_searches_validate_on_images_the_base_did_not_train_on_where_it_held_some_out(
        synthetic_data, tmp_path, holdout_frac):
    """The split every search uses (``Search.latents`` and ``Search.image_split``), on a
    finished base: with a holdout, the validation latents are the held-out images' and
    the fit part is exactly the base's training images; without one, the validation
    part is carved out of the training images. Neither ever holds a test image."""
    from vinet_utils.network import data as D, models as M, train as T

    run = tmp_path / "smoke" / "cifar10-resnet18"
    ds = D.load_dataset("cifar10", holdout_frac=holdout_frac)
    T.train_classifier(M.resnet18(10, width=0.125), ds, T.TrainConfig(epochs=1, batch_size=50),
                       run, params={"arch": "resnet18", "width": 0.125,
                                    "holdout_frac": holdout_frac}, progress=False)
    S = sweep.start_search("t", "smoke", None, None, ["tiny"], 2, 0.1, tmp_path,
                           {"n_train": None, "n_test": None, "holdout_frac": holdout_frac,
                            "pool": "gap"})
    lat, images = S.latents("tiny"), S.image_split()
    fp = lambda x: {hash(bytes(i.numpy())) for i in x}  # noqa: E731
    assert not fp(images.test_x) & fp(ds.test_x)  # the test split never validates
    assert not fp(images.test_x) & fp(images.train_x)
    assert len(lat["test"]) == len(images.test_x) and len(lat["train"]) == len(images.train_x)
    if holdout_frac:
        assert fp(images.train_x) == fp(ds.train_x)  # the base's own training images, all
        assert S.validation_record(lat)["overlaps_base_training"] is False
    else:
        assert fp(images.test_x) <= fp(ds.train_x)  # carved out of what the base saw
        assert S.validation_record(lat)["overlaps_base_training"] is True
    # the latents are those of the same images: the first validation image's latent
    base = M.truncate(S.model, "tiny")
    from vinet_utils.method import latents as L
    z = L.extract(base, images.test_x[:1], ds.mean, ds.std, "gap", progress=False)
    assert torch.allclose(z.float(), lat["test"][:1].float(), atol=1e-2)


def test_split_latents_never_carries_the_test_split():
    lat = {"train": torch.randn(200, 7).half(), "train_y": torch.arange(4).repeat(50),
           "test": torch.full((30, 7), 99.0), "test_y": torch.zeros(30, dtype=torch.long),
           "key": {"n_train": 200}}
    s = sweep.split_latents(lat, 0.2, seed=0)  # the whole cache, its test split with it
    assert len(s["train"]) == 160 and len(s["test"]) == 40
    for part in ("train", "test"):  # neither the fit nor the validation part is test data
        assert not (s[part] == 99).all(dim=1).any(), part
    assert len(s["test_y"]) == 40 and s["test_y"].bincount().tolist() == [10] * 4
    rows = {tuple(r.tolist()) for r in lat["train"].float()}
    assert all(tuple(r.tolist()) in rows for r in s["test"].float())
    assert s["key"]["validation_frac"] == 0.2
