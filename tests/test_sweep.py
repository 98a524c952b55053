"""The hyperparameter sweep sees only the training split."""

import pytest
import torch

from vinet_utils import sweep


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


def test_split_latents_never_carries_the_test_split():
    lat = {"train": torch.randn(200, 7).half(), "train_y": torch.arange(4).repeat(50),
           "test": torch.full((30, 7), 99.0), "test_y": torch.zeros(30, dtype=torch.long),
           "key": {"n_train": 200}}
    s = sweep.split_latents({k: lat[k] for k in ("train", "train_y", "key")}, 0.2, seed=0)
    assert len(s["train"]) == 160 and len(s["test"]) == 40
    assert not (s["test"] == 99).any()  # the "test" it evaluates on is validation data
    rows = {tuple(r.tolist()) for r in lat["train"].float()}
    assert all(tuple(r.tolist()) in rows for r in s["test"].float())
    assert s["key"]["validation_frac"] == 0.2
