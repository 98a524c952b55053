"""The paper's setting, scaled down so that it runs here: the ``paper`` profile at width
1.0, every cut, both protocols and the paper-size head, through notebooks 01-06 on a
200-image subset. A width-1.0 path that breaks fails here, not on a user's GPU."""

import os

import pytest

from vinet_utils.workflow import pipeline
from vinet_utils.common.results import read_json

SMALL = {"n_train": 200, "n_test": 100, "epochs": 1, "batch_size": 100,
         "finetune_batch_size": 100, "samples_per_class": 20, "finetune_epochs": 1,
         "unfreeze_epochs": 1, "repeats": 2, "throughput_batches": 1, "eval_batch_size": 50,
         "unfreeze_base": True}  # both protocols, though the profile itself runs frozen only


@pytest.fixture
def data(synthetic_root, monkeypatch):
    """The real CIFAR-10 where ``VINET_DATA_DIR`` has it, else the synthetic one."""
    real = os.environ.get("VINET_DATA_DIR")
    if not (real and os.path.isdir(os.path.join(real, "cifar-10-batches-py"))):
        monkeypatch.setenv("VINET_SYNTHETIC_DATA", "1")
        monkeypatch.setenv("VINET_DATA_DIR", str(synthetic_root))


def test_the_paper_profile_runs_end_to_end_at_width_one(data, tmp_path, monkeypatch):
    monkeypatch.setenv("VINET_PLAIN_PROGRESS", "1")
    run = pipeline.run("paper", "cifar10", "resnet18", results_dir=tmp_path,
                       overrides=SMALL, engine="inline")
    base = read_json(run / "01_baseline.json")
    held = base["data"]["n_holdout"]  # the profile holds 10% of each class out of training
    assert base["params"]["width"] == 1.0 and base["metrics"]["n_train"] == 200 - held and held > 0
    # the profile states its lr at its own batch size: at batch 100 it is scaled with it
    paper = pipeline.load_profile("paper")
    assert base["lr_used"] == pytest.approx(paper["lr"] * 100 / paper["lr_batch_size"])
    assert len(base["history"]["epoch"]) == 1
    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    assert {r["variant"] for r in rows} == {"tiny", "small", "medium", "large"}
    assert {r["protocol"] for r in rows} == {"frozen", "end to end"}
    assert any(r["head"] == "VI-Net (paper budget)" for r in rows)
    # the paper's Poly Params are 32·D plus ~0.13M: its projection dominates at tiny
    vi = {r["variant"]: r for r in read_json(run / "04_vinet.json")["metrics"]["variants"]}
    assert vi["tiny"]["projection_params"] == 32 * 128 * 16 * 16 + 128 * 16 * 16
    # FLOPs: every cut does less work than the full network, and the earlier the less
    flops = read_json(run / "06_throughput.json")["metrics"]["flops_per_image"]
    order = [flops[f"VI-Net {v}"] for v in ("tiny", "small", "medium", "large")]
    assert order == sorted(order) and order[-1] < flops["ResNet (full)"]
    # the table names every way the run is scaled down
    header = (run / "table.md").read_text().splitlines()[0]
    assert "width 1.0" in header and f"{200 - held} training images" in header
    assert "100 test images" in header and "Not the paper's setting" in header
