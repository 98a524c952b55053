"""A run folder holds one baseline: a different base never silently reuses it."""

import json
import os
import subprocess
import sys

import pytest
import torch

from vinet_utils.network import data as D, models as M, train as T
from vinet_utils.workflow import pipeline
from vinet_utils.common.results import REPO_ROOT, read_json

BASE = {"dataset": "cifar10", "arch": "resnet18", "width": 0.125, "n_train": 100, "n_test": 50,
        "seed": 0, "epochs": 1, "batch_size": 50}


def _train(folder, width=0.125, n_train=100, **extra):
    ds = D.load_dataset("cifar10", n_train=n_train, n_test=50)
    torch.manual_seed(0)
    model = M.resnet18(10, width=width)
    cfg = T.TrainConfig(epochs=1, batch_size=50, seed=0)
    params = {**BASE, "width": width, "n_train": n_train, **extra}
    return T.train_classifier(model, ds, cfg, folder, params=params, progress=False)


def test_another_width_or_subset_stops_with_the_parameter_named(synthetic_data, tmp_path):
    _train(tmp_path)
    with pytest.raises(ValueError, match=r"width=0\.25 \(its baseline has 0\.125\).*run_name"):
        _train(tmp_path, width=0.25)
    with pytest.raises(ValueError, match=r"n_train=80 \(its baseline has 100\)"):
        _train(tmp_path, n_train=80)
    # later stages check their own parameters against the folder's baseline
    with pytest.raises(ValueError, match=r"n_train=80 \(its baseline has 100\)"):
        T.load_baseline(tmp_path, params={"dataset": "cifar10", "n_train": 80, "n_test": 50})
    model, rec = T.load_baseline(tmp_path, params={"dataset": "cifar10", "n_train": 100})
    assert rec["params"]["width"] == 0.125


def test_an_interrupted_base_is_not_resumed_with_other_parameters(synthetic_data, tmp_path):
    _train(tmp_path)
    (tmp_path / "01_baseline.json").unlink()  # as if the run had stopped before finishing
    with pytest.raises(ValueError, match=r"width=0\.25"):
        _train(tmp_path, width=0.25)
    assert _train(tmp_path)["finished"]  # the same parameters pick it up again


def _pipeline(results_dir, data_root, *sets):
    args = [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "VINET_DATA_DIR": str(data_root), "VINET_SYNTHETIC_DATA": "1",
           "VINET_RESULTS_DIR": str(results_dir)}  # the default folder: left unset in notebooks
    return subprocess.run([sys.executable, "-m", "vinet_utils.workflow.pipeline", "--profile", "smoke",
                           "--results-dir", str(results_dir), "--stages", "01_baseline_training",
                           "--set", "n_train=300", "--set", "n_test=100", "--set", "epochs=1",
                           "--set", "batch_size=100", *args],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True)


def test_pipeline_stops_before_any_work_or_makes_a_fresh_run(synthetic_root, tmp_path):
    first = _pipeline(tmp_path, synthetic_root)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    folder = tmp_path / "smoke" / "cifar10-resnet18"
    made = read_json(folder / "01_baseline.json")["created_utc"]
    injected = [c["source"] for c in json.loads((folder / "01_baseline_training.ipynb").read_text())["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and not [s for s in injected if "results_dir" in "".join(s)]
    for bad, named in (("width=0.5", "width=0.5 (its baseline has 0.25)"),
                       ("n_train=400", "n_train=400 (its baseline has 300)")):
        out = _pipeline(tmp_path, synthetic_root, bad)
        assert out.returncode != 0 and named in out.stderr, out.stderr[-2000:]
        assert "run_name" in out.stderr and "== 01" not in out.stdout  # no notebook ran
    assert read_json(folder / "01_baseline.json")["created_utc"] == made  # untouched
    fresh = _pipeline(tmp_path, synthetic_root, "width=0.5", "run_name=w0.5")
    assert fresh.returncode == 0, fresh.stdout[-2000:] + fresh.stderr[-2000:]
    other = read_json(tmp_path / "smoke" / "cifar10-resnet18-w0.5" / "01_baseline.json")
    assert other["params"]["width"] == 0.5 and other["params"]["run_name"] == "w0.5"


def test_a_profile_lr_follows_the_batch_size_unless_lr_is_set(synthetic_data, tmp_path,
                                                               monkeypatch):
    """The smoke profile states lr at batch 128; a run at batch 64 trains at half of it,
    and an lr set by hand is used as given. The results file records what was used."""
    from vinet_utils.workflow import pipeline
    monkeypatch.setenv("VINET_PLAIN_PROGRESS", "1")
    smoke = pipeline.load_profile("smoke")
    small = {"n_train": 200, "n_test": 100, "epochs": 1, "batch_size": 64}
    used = {}
    for name, extra in (("scaled", {}), ("given", {"lr": 0.3})):
        run = pipeline.run("smoke", stages=["01_baseline_training"], results_dir=tmp_path / name,
                           overrides={**small, **extra}, engine="inline")
        rec = read_json(run / "01_baseline.json")
        assert rec["train_config"]["lr"] == rec["lr_used"]
        used[name] = rec["lr_used"]
    assert used["scaled"] == pytest.approx(smoke["lr"] * 64 / smoke["lr_batch_size"])
    assert used["given"] == 0.3


def test_a_relative_data_folder_is_made_absolute_before_the_notebooks_run(tmp_path, monkeypatch):
    """The notebooks run in notebooks/, so a relative data folder (from the environment
    or the data_dir parameter) is read from where the pipeline started."""
    from vinet_utils.workflow.pipeline import absolute_data_dirs
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VINET_DATA_DIR", "data")
    parameters = {"data_dir": "elsewhere/cifar", "seed": 0}
    absolute_data_dirs(parameters)
    assert os.environ["VINET_DATA_DIR"] == str(tmp_path / "data")
    assert parameters == {"data_dir": str(tmp_path / "elsewhere" / "cifar"), "seed": 0}
    monkeypatch.delenv("VINET_DATA_DIR")
    empty = {"data_dir": None}
    absolute_data_dirs(empty)  # nothing set: the default (<repo>/data) stays the loader's
    assert "VINET_DATA_DIR" not in os.environ and empty == {"data_dir": None}


@pytest.mark.parametrize("stages, rebuilt", [(["05_evaluation_ablations"], True),
                                             (["05_evaluation_ablations", "06_throughput_table"], False)])
def test_a_run_of_some_stages_rebuilds_the_table_notebook_06_wrote(tmp_path, monkeypatch, stages,
                                                                   rebuilt):
    """The table reads notebooks 04-06: a run of stages before 06 (a rerun of 05, the
    study's 01-05) rebuilds it from their results files rather than leaving the one
    notebook 06 wrote before; a run that includes 06 leaves it to the notebook."""
    from vinet_utils.workflow import pipeline
    from vinet_utils.report import paper_table as table

    (tmp_path / "table.md").write_text("| old |\n")
    calls = []
    monkeypatch.setattr(table, "write", lambda out: calls.append(out))
    pipeline.refresh_table(tmp_path, stages)
    assert calls == ([tmp_path] if rebuilt else [])


def _dry_make(*args) -> str:
    done = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_reproduce_leaves_the_committed_results_alone_and_says_how_long():
    assert "--results-dir runs" in _dry_make("reproduce", "PROFILE=cpu")
    assert "--results-dir results" in _dry_make("reproduce", "PROFILE=cpu", "RESULTS=results")
    committed = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    minutes = pipeline.stage_minutes(committed)
    times = read_json(committed / "stage_times.json")["runs"]
    assert minutes["01_baseline_training"] * 60 == max(
        r["stage_seconds"].get("01_baseline_training", 0) for r in times)
    mine = pipeline.announcement(REPO_ROOT / "runs" / "cpu" / "cifar10-resnet18", "cpu",
                                 "cifar10", "resnet18")
    assert f"took {sum(minutes.values()):.0f} min" in mine and "is left as it is" in mine
    again = pipeline.announcement(committed, "cpu", "cifar10", "resnet18")
    assert "remade in place" in again
    assert "no committed timing" in pipeline.announcement(
        REPO_ROOT / "runs" / "x", "smoke", "cifar10", "resnet18")


def test_make_lab_starts_as_root():
    assert ("--allow-root" in _dry_make("lab")) == (os.geteuid() == 0)


def test_stages_are_named_whole_or_by_number_and_others_are_refused_with_the_allowed_values():
    from vinet_utils.workflow import pipeline

    assert pipeline.stage_names(["05", "06_throughput_table"]) == ["05_evaluation_ablations",
                                                                    "06_throughput_table"]
    with pytest.raises(ValueError, match=r"stages must be drawn from 01_baseline_training.*numbers 01, 02"):
        pipeline.stage_names(["5"])


def _stage(folder, width=0.125, psi=0.05):
    from types import SimpleNamespace
    from vinet_utils.common.results import Stage
    from vinet_utils.workflow.stage import StageRun
    torch.manual_seed(0)
    model = M.resnet18(10, width=width)
    ds = SimpleNamespace(provenance=lambda: {"dataset": "cifar10", "fingerprint": "sha256:0"})
    params = {"psi": psi, "results_dir": str(folder), "data_dir": "elsewhere"}
    return StageRun("05_ablations", params, "cpu", folder, model, {}, ds,
                    Stage("05_ablations", params))


def test_a_stage_by_cut_keeps_each_finished_cut_and_resumes_only_with_its_identity(tmp_path):
    calls = []

    def work(cut, fail_at=None):
        calls.append(cut)
        if cut == fail_at:
            raise KeyboardInterrupt  # the session ends inside this cut
        return [{"variant": cut, "acc": float(len(calls))}]

    cuts = ["tiny", "small", "medium"]
    with pytest.raises(KeyboardInterrupt):
        _stage(tmp_path).by_cut("05.by_cut.json", cuts, lambda c: work(c, fail_at="medium"))
    kept = read_json(tmp_path / "05.by_cut.json")
    assert list(kept["cuts"]) == ["tiny", "small"] and kept["cuts"]["small"]["wall_time_s"] >= 0
    # the same identity (the folders may differ) resumes at the cut that did not finish
    again = _stage(tmp_path)
    again.params["data_dir"] = "moved"
    calls.clear()
    rows, made = again.by_cut("05.by_cut.json", cuts, work)
    assert calls == ["medium"]
    assert [r["acc"] for r in rows] == [1.0, 2.0, 1.0] and list(made) == cuts
    assert "rows" not in made["tiny"] and made["tiny"]["device_name"]
    # another parameter, or another base, starts over
    for other in (_stage(tmp_path, psi=0.1), _stage(tmp_path, width=0.25)):
        calls.clear()
        other.by_cut("05.by_cut.json", cuts, work)
        assert calls == cuts
    # the stage's results file takes over from the record of its cuts
    assert (tmp_path / "05.by_cut.json").exists()
    other.write("05.json", {"rows": rows, "by_cut": made})
    assert not (tmp_path / "05.by_cut.json").exists()
    assert read_json(tmp_path / "05.json")["metrics"]["by_cut"]["medium"]["wall_time_s"] >= 0
