"""What a reader meets first: `make lab`, the read-along index, the notebooks' first
cells, papermill on its own as docs/running.md shows it, the figures, and how to cite."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from vinet_utils.common.results import REPO_ROOT

matplotlib.use("Agg")

NOTEBOOKS = ["01_baseline_training", "02_latent_features", "03_vanishing_ideals",
             "04_vinet_construction", "05_evaluation_ablations", "06_throughput_table"]
CPU_RUN = "results/cpu/cifar10-resnet18"
CIFAR100_RUN = "results/cpu-cifar100/cifar100-resnet34"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "markdown"]


def _relative_links(text: str) -> list[str]:
    return [t.split("#")[0] for t in LINK.findall(text) if "://" not in t and t.split("#")[0]]


def test_make_lab_opens_jupyterlab_at_the_repository_root_on_the_index():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "jupyter lab" in recipe and "index.ipynb" in recipe
    assert "--ServerApp.root_dir=$(CURDIR)" in recipe
    assert " notebooks" not in recipe  # not notebooks/ alone: results/ must be reachable
    header = [ln for ln in makefile.splitlines() if ln.startswith("# make ")]
    assert any(ln.startswith("# make lab ") for ln in header)


def test_the_read_along_index_leads_through_the_committed_runs_and_its_links_resolve():
    import nbformat

    index = REPO_ROOT / "index.ipynb"
    nbformat.validate(nbformat.read(index, as_version=4))
    text = "\n".join(_markdown(index))
    links = _relative_links(text)
    assert links
    for target in links:
        assert (REPO_ROOT / target).exists(), target
    for name in NOTEBOOKS:  # every executed notebook of both runs; the CIFAR-10 run has all
        assert f"{CPU_RUN}/{name}.ipynb" in links, (CPU_RUN, name)
        executed = (REPO_ROOT / CIFAR100_RUN / f"{name}.ipynb").exists()
        assert executed == (f"{CIFAR100_RUN}/{name}.ipynb" in links), (CIFAR100_RUN, name)
    assert "README.md" in links and "docs/method.md" in links
    # The paper profile's run: the index says it has no executed notebooks while that is true.
    paper_notebooks = list(REPO_ROOT.glob("results/paper/*/*.ipynb"))
    says_none = "has no executed notebooks yet" in " ".join(text.split())
    assert says_none == (not paper_notebooks), "update index.ipynb's paper-profile section"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_template_notebook_says_its_outputs_are_a_smoke_run_and_links_the_real_one(name):
    path = REPO_ROOT / "notebooks" / f"{name}.ipynb"
    first = _markdown(path)[0]
    assert json.loads(path.read_text())["cells"][0]["cell_type"] == "markdown"
    assert "smoke run" in " ".join(first.split())
    target = f"../{CPU_RUN}/{name}.ipynb"
    assert target in _relative_links(first)
    assert (path.parent / target).resolve().is_file()


def test_citation_cff_cites_the_repository_and_the_paper():
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["authors"]
    refs = cff.get("references", []) + ([cff["preferred-citation"]]
                                        if "preferred-citation" in cff else [])
    paper = [r for r in refs if r["title"] == ("Approximating Latent Manifolds in Neural "
                                               "Networks via Vanishing Ideals")]
    assert len(paper) == 1
    names = [(a["family-names"], a["given-names"]) for a in paper[0]["authors"]]
    assert names == [("Pelleriti", "Nico"), ("Zimmer", "Max"), ("Wirth", "Elias"),
                     ("Pokutta", "Sebastian")]
    assert paper[0]["year"] == 2025 and "2502.15051" in yaml.safe_dump(paper[0])
    assert "ICML" in yaml.safe_dump(paper[0])
    licence = (REPO_ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License")
    assert "Copyright (c) 2026 the VI-Net reproduction authors" in licence


def _documented_papermill_block() -> str:
    """The one bash block of docs/running.md's section on running a notebook by hand."""
    text = (REPO_ROOT / "docs" / "running.md").read_text()
    section = text.split("## One notebook with papermill, on its own", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 1, blocks
    papermill = [ln for ln in blocks[0].replace("\\\n", " ").splitlines() if ln.startswith("papermill ")]
    assert len(papermill) == 1, papermill
    return blocks[0]


#: The caches a long run (the budget curve, the reference protocol) may be writing meanwhile.
CACHES = {"latents", "ideals", "heads", "sweep", "protocol", "budget"}


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")
            if p.is_file() and not CACHES & set(p.relative_to(folder).parts[:-1])}


def test_papermill_on_its_own_runs_as_documented_and_leaves_the_committed_results_alone(
        synthetic_root, tmp_path):
    """docs/running.md's commands, exactly (only /tmp/vinet becomes a folder that does not
    exist yet), on the smoke profile and synthetic data: the results land under the
    results_dir given and nothing under the repository's results/ changes."""
    block = _documented_papermill_block()
    cmd = shlex.split(next(ln for ln in block.splitlines() if ln.startswith("papermill ")))
    assert cmd[:2] == ["papermill", "notebooks/01_baseline_training.ipynb"]
    assert cmd[cmd.index("-f") + 1] == "params/smoke.yaml" and "results_dir" in cmd
    out = tmp_path / "not yet made" / "vinet"  # as /tmp/vinet is on a fresh machine
    script = block.replace("/tmp/vinet", shlex.quote(str(out))).replace(
        "papermill ", "papermill --no-progress-bar ")
    env = {k: v for k, v in os.environ.items() if k != "VINET_RESULTS_DIR"}
    env.update(VINET_DATA_DIR=str(synthetic_root), VINET_SYNTHETIC_DATA="1",
               VINET_PLAIN_PROGRESS="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    before = _snapshot(REPO_ROOT / "results")
    done = subprocess.run(["bash", "-euc", script], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = out / "results" / "smoke" / "cifar10-resnet18"
    rec = json.loads((run / "01_baseline.json").read_text())
    assert rec["params"]["profile"] == "smoke" and rec["metrics"]["test_acc"] >= 0
    assert (run / "01_learning_curve.png").is_file()
    assert (out / "01_baseline_training.ipynb").is_file()
    assert _snapshot(REPO_ROOT / "results") == before


# --- the figures: every series its own look, legends off the data, no label on another


def _legend_boxes(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + fig.legends
    return r, legends


def _legends_cover_no_axes(fig):
    r, legends = _legend_boxes(fig)
    assert legends
    data_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for leg in legends:
        box = leg.get_window_extent(r)
        for ax in data_axes:
            assert not box.overlaps(ax.get_window_extent(r)), leg


def test_the_ablation_figure_gives_each_of_eleven_series_its_own_colour_and_marker():
    from vinet_utils.report import figures as plots
    from vinet_utils.report.figures import style

    heads = ["VI-Net", "linear (flatten)", "random monomials", "MLP", "projection + linear",
             "linear (gap)", "VI-Net (gap)"]
    e2e = [f"{h}{style.E2E}" for h in ("VI-Net", "linear (flatten)", "projection + linear", "MLP")]
    rows = [{"head": h, "removed_pct": x, "acc": 80 - x / 3 + i, "acc_std": 0.1}
            for i, h in enumerate(heads + e2e) for x in (5.0, 20.0, 35.0)]
    paper = pd.DataFrame([{"head": h, "removed_pct": x, "acc": 70 - x / 4}
                          for h in ("VI-Net", "linear head on the truncated net",
                                    "random monomials") for x in (0, 30, 60)])
    for overlay in (False, True):
        fig = plots.ablations(pd.DataFrame(rows), {"acc": 85.0}, paper, overlay=overlay)
        series = [c for c in fig.axes[0].containers]  # one errorbar container per head
        assert len(series) == 11
        looks = [(matplotlib.colors.to_hex(c.lines[0].get_color()), c.lines[0].get_marker())
                 for c in series]
        assert len({colour for colour, _ in looks}) == 11
        assert len({marker for _, marker in looks}) == 11
        _legends_cover_no_axes(fig)
        matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("table", sorted(REPO_ROOT.glob("results/*/*/table.csv")),
                         ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_the_speed_figure_labels_overlap_neither_each_other_nor_the_legend(table):
    """On every committed run's table: no label overlaps another, no line tying a label
    to its point crosses another label or another such line, every label is inside the axes."""
    from matplotlib.text import Text

    from vinet_utils.report import figures as plots
    from vinet_utils.report.figures.style import _crosses, _inside, _tie

    fig = plots.speed_vs_accuracy(pd.read_csv(table))
    ax = fig.axes[0]
    r, _ = _legend_boxes(fig)
    labels = [t for t in ax.texts if t.get_text()]
    assert {t.get_text() for t in labels} >= {"Tiny", "Small", "Medium", "Large"}
    boxes = [Text.get_window_extent(t, r) for t in labels]  # the text, without its tie line
    ties = np.empty((0, 2))
    for i, (label, a) in enumerate(zip(labels, boxes)):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
        assert ax.get_window_extent(r).contains(a.x0, a.y0)
        if label.arrow_patch is not None:
            tie = _tie(a, ax.transData.transform(label.xy))
            assert not [b for j, b in enumerate(boxes) if j != i and _inside(tie, b)], label.get_text()
            assert not _crosses(tie, ties, 2 * fig.dpi / 72), label.get_text()
            ties = np.vstack([ties, tie])
    _legends_cover_no_axes(fig)
    matplotlib.pyplot.close(fig)


def test_a_figure_of_a_hundred_classes_shows_ten_and_says_so():
    from vinet_utils.report import figures as plots
    from vinet_utils.report.figures import style

    rng = np.random.default_rng(0)
    classes = [f"class{k}" for k in range(100)]
    points = {v: (rng.normal(size=(2000, 2)), rng.integers(0, 100, 2000))
              for v in ("tiny", "small")}
    fig = plots.pca_scatter(points, classes)
    legend = fig.axes[-1].get_legend()
    assert len(legend.get_texts()) == 10
    assert "10 of the 100 classes" in fig.get_suptitle()
    shown = {t.get_text() for t in legend.get_texts()}
    assert shown == {classes[k] for k in style.class_sample(100)}
    _legends_cover_no_axes(fig)
    assert fig.get_size_inches()[1] < 5  # no legend of 100 entries stretching the figure
    matplotlib.pyplot.close(fig)


def test_every_colour_bar_is_labelled():
    from vinet_utils.report import figures as plots

    rng = np.random.default_rng(0)
    fig = plots.vanishing_heatmaps({v: rng.random((10, 10)) for v in ("tiny", "small")},
                                   [f"c{k}" for k in range(10)])
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2
    assert all(ax.get_ylabel() for ax in bars)
    matplotlib.pyplot.close(fig)


def test_an_executed_run_drops_the_templates_smoke_note(tmp_path, monkeypatch):
    """The templates say their outputs are a smoke run's; a notebook executed into a run
    folder under results/ is not, so tidying it drops that note and keeps the rest."""
    import shutil

    import nbformat

    from vinet_utils.workflow import pipeline as PL

    run = tmp_path / "results" / "cpu" / "cifar10-resnet18"
    run.mkdir(parents=True)
    monkeypatch.setattr(PL, "RESULTS", tmp_path / "results")
    for name in ("02_latent_features.ipynb", "05_evaluation_ablations.ipynb"):
        shutil.copy(REPO_ROOT / "notebooks" / name, run / name)
        PL.tidy_notebook(run / name)
        before = nbformat.read(REPO_ROOT / "notebooks" / name, 4).cells[0].source
        after = nbformat.read(run / name, 4).cells[0].source
        assert "Smoke outputs" in before and "Smoke outputs" not in after
        assert after.strip() == before.split("> **Smoke outputs.**")[0].strip()
    outside = tmp_path / "elsewhere.ipynb"  # a template tidied in place keeps its note
    shutil.copy(REPO_ROOT / "notebooks" / "02_latent_features.ipynb", outside)
    PL.tidy_notebook(outside)
    assert "Smoke outputs" in nbformat.read(outside, 4).cells[0].source
