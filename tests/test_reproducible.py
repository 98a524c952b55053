"""Same seed, same numbers; and every results file is strict JSON that tells the truth."""

import json
import math
import os
import shutil
import subprocess
import sys
import time

import pytest

from vinet_utils.common.results import REPO_ROOT, Stage, jsonable, read_json, write_json
from vinet_utils.common.seeds import derive_seed

#: A pipeline run small enough for a test: synthetic CIFAR-10, two cuts, two seeds.
TINY_RUN = {"n_train": 300, "n_test": 100, "epochs": 1, "batch_size": 50,
            "variants": "[tiny, large]", "pca_dim": 4, "samples_per_class": 25,
            "max_degree": 2, "psi": 0.01, "keep_per_class": 3, "finetune_epochs": 2, "seeds": 2}
HEAD_STAGES = ["02_latent_features", "03_vanishing_ideals", "04_vinet_construction",
               "05_evaluation_ablations"]
RESULTS = ["02_latents.json", "03_ideals.json", "04_vinet.json", "05_ablations.json"]


def _pipeline(results_dir, data_root, stages):
    sets = [a for k, v in TINY_RUN.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "VINET_DATA_DIR": str(data_root), "VINET_SYNTHETIC_DATA": "1"}
    env.pop("VINET_RESULTS_DIR", None)
    out = subprocess.run([sys.executable, "-m", "vinet_utils.workflow.pipeline", "--profile", "smoke",
                          "--results-dir", str(results_dir), "--stages", *stages, *sets],
                         env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _without_timings_and_paths(obj):
    """A results record less what legitimately differs between two runs: measured
    times, when and from which checkout it ran, and where its files went."""
    volatile = {"created_utc", "git_commit", "results_dir", "peak_host_memory_gb"}
    if isinstance(obj, dict):
        return {k: _without_timings_and_paths(v) for k, v in obj.items()
                if k not in volatile and not k.endswith("_time_s")}
    if isinstance(obj, list):
        return [_without_timings_and_paths(v) for v in obj]
    return obj


def test_two_runs_with_the_same_seed_write_the_same_results(synthetic_root, tmp_path):
    """Notebooks 02-05 run twice, each in a process of its own, on one baseline: the
    fitted ideals, every head's accuracy and every loss curve must agree exactly."""
    a, b = tmp_path / "a", tmp_path / "b"
    _pipeline(a, synthetic_root, ["01_baseline_training"])
    run_a, run_b = a / "smoke" / "cifar10-resnet18", b / "smoke" / "cifar10-resnet18"
    run_b.mkdir(parents=True)
    for f in ("01_baseline.json", "01_baseline.ckpt"):
        shutil.copy(run_a / f, run_b / f)
    _pipeline(a, synthetic_root, HEAD_STAGES)
    _pipeline(b, synthetic_root, HEAD_STAGES)
    for name in RESULTS:
        ra, rb = read_json(run_a / name), read_json(run_b / name)
        assert ra["wall_time_s"] > 0 and rb["wall_time_s"] > 0, name  # measured, not a constant
        assert _without_timings_and_paths(ra) == _without_timings_and_paths(rb), name
    heads = read_json(run_a / "05_ablations.json")["metrics"]["rows"]
    assert {r["head"] for r in heads} >= {"linear (flatten)", "projection + linear", "MLP",
                                          "random monomials", "linear (gap)", "VI-Net (gap)",
                                          "VI-Net"}
    assert all(len(r["acc_per_seed"]) == 2 for r in heads if r["head"] != "VI-Net, end to end")


def _strict(text):
    def reject(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=reject)


def test_every_committed_results_file_is_strict_json():
    files = sorted((REPO_ROOT / "results").rglob("*.json"))
    assert files
    for path in files:
        _strict(path.read_text())


def test_results_are_strict_json_and_record_measured_time(tmp_path):
    stage = Stage("test", {"seed": 0})
    time.sleep(0.05)
    path = stage.write(tmp_path / "r.json", {"acc": float("nan"), "rows": [{"x": math.inf}]})
    rec = _strict(path.read_text())
    assert rec["metrics"] == {"acc": None, "rows": [{"x": None}]}
    assert rec["wall_time_s"] >= 0.05 and rec["git_commit"] is not None
    with pytest.raises(ValueError):
        _strict('{"a": NaN}')
    write_json(tmp_path / "s.json", {"v": __import__("numpy").float32("nan")})
    assert _strict((tmp_path / "s.json").read_text()) == {"v": None}


def test_a_live_record_made_jsonable_equals_what_is_read_back(tmp_path):
    """A rerun compares the record it would write with the one on disk (the budget
    curve's identity): ``jsonable`` must already give what ``read_json`` returns."""
    import numpy as np
    import torch

    live = {"cuts": ("tiny", "small"), 3: {"lr": np.float32(0.5), "n": np.int64(4)},
            "t": torch.tensor([1.0, 2.0]), "where": tmp_path / "x", "bad": math.nan}
    write_json(tmp_path / "r.json", live)
    stored = read_json(tmp_path / "r.json")
    assert jsonable(live) == stored
    assert live != stored  # the tuple, the int key, the tensor and the path differ


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "head", "tiny", 0) == derive_seed(0, "head", "tiny", 0)
    seeds = {derive_seed(s, "head", v, r) for s in (0, 1) for v in ("tiny", "small")
             for r in range(3)}
    assert len(seeds) == 12 and all(0 <= s < 2**31 for s in seeds)
