"""The repository keeps its promises: one pinned stack, notebooks shaped as narratives."""

import json
import re
from pathlib import Path

import pytest
import yaml

from vinet_utils.common.results import REPO_ROOT


def _requirements():
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_environment_yml_pins_the_same_packages_as_requirements():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == _requirements()
    assert "python=3.11" in env["dependencies"]
    assert "torch==2.14.1" in pip and "torchvision==0.29.1" in pip


def test_notebooks_are_short_narratives_with_one_parameters_cell():
    notebooks = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks and notebooks[0].name.startswith("01_")
    for path in notebooks:
        nb = json.loads(path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, path.name
        assert nb["cells"][0]["cell_type"] == "markdown", path.name
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and cell is not tagged[0]:
                assert len("".join(cell["source"]).splitlines()) <= 15, (path.name, cell["source"])


def test_notebook_defaults_are_the_smoke_profile():
    """The committed notebooks' outputs come from their defaults, which must be the
    smoke profile, so that `make reproduce PROFILE=smoke` and the notebooks agree."""
    import papermill as pm
    smoke = yaml.safe_load((REPO_ROOT / "params" / "smoke.yaml").read_text())
    for path in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        declared = pm.inspect_notebook(str(path))
        for name, spec in declared.items():
            if name in smoke:
                assert eval(spec["default"]) == smoke[name], (path.name, name)


def test_readme_numbers_come_from_the_results_files():
    """Every generated block lives on exactly one page (README.md or docs/*.md), the
    blocks across pages are exactly ``report.BLOCKS``, and every page equals what the
    results files and the profiles give now (python -m vinet_utils.report rewrites them)."""
    from vinet_utils import report
    pages = report.pages()
    assert REPO_ROOT / "README.md" in pages and REPO_ROOT / "docs" / "method.md" in pages
    found = {p: report.blocks(p.read_text()) for p in pages}
    names = [b for bs in found.values() for b in bs]
    assert sorted(names) == sorted(set(names)), f"a block on more than one page: {found}"
    assert set(names) == set(report.BLOCKS), set(names) ^ set(report.BLOCKS)
    for path in pages:
        text = path.read_text()
        assert report.render(text) == text, f"{path.name}: run python -m vinet_utils.report"
    assert "make test" in (REPO_ROOT / "README.md").read_text()  # what .ci/run calls


def test_readme_is_a_front_page_whose_links_resolve():
    """The README stays short, and every relative link on every page points at a file
    that exists (the docs are one click away, and moving a file breaks no link)."""
    import re
    from vinet_utils import report
    assert len((REPO_ROOT / "README.md").read_text().splitlines()) <= 150
    for page in report.pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), (page.name, target)


RUNS = [REPO_ROOT / "results" / p / r for p, r in (("cpu", "cifar10-resnet18"),
                                                   ("paper", "cifar10-resnet18"),
                                                   ("cpu-cifar100", "cifar100-resnet34"))
        if (REPO_ROOT / "results" / p / r / "06_throughput.json").exists()]


def _csv(run):
    import csv
    with open(run / "table.csv", newline="") as f:
        return {r["Model"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("run", RUNS, ids=lambda r: f"{r.parent.name}/{r.name}")
def test_committed_runs_agree_with_themselves(run):
    """What a reader of the committed results relies on, across files that different
    stages wrote: parameter counts add up and grow with the cut, the baseline is one
    number everywhere, and every model got every throughput repetition. ``make readme``
    only copies these files, so nothing here is true by construction. A run whose
    notebook 05 has not run yet (the paper run: its device time ended first) is checked
    without it."""
    from vinet_utils.common.results import read_json
    base = read_json(run / "01_baseline.json")
    vinet = read_json(run / "04_vinet.json")["metrics"]
    has_05 = (run / "05_ablations.json").exists()
    abl = read_json(run / "05_ablations.json")["metrics"] if has_05 else {"rows": []}
    speed = read_json(run / "06_throughput.json")
    table = _csv(run)
    variants = [v["variant"] for v in vinet["variants"]]
    assert variants == ["tiny", "small", "medium", "large"]
    net = {"resnet18": "18", "resnet34": "34"}[base["params"]["arch"]]

    # Total = Base + Poly for every VI-Net, in notebook 04 and in the table it feeds.
    for v in vinet["variants"]:
        assert v["total_params"] == v["base_params"] + v["poly_params"], v["variant"]
        row = table[f"VI-Net{net}-{v['variant'].capitalize()}"]
        assert int(row["Total Params"]) == v["total_params"]
        assert int(row["Base Params"]) == v["base_params"]
        assert float(row["Poly Params"]) == pytest.approx(v["poly_params"], rel=1e-3)
    # Every head of notebook 05: its total is the truncated base plus the head.
    for r in abl["rows"]:
        assert r["total_params"] == r["base_params"] + r["params"], (r["head"], r["variant"])

    # The base keeps more parameters the later the cut, and fewer than the full ResNet.
    full = int(table[f"ResNet{net}"]["Total Params"])
    assert full == abl["baseline"]["total_params"] if has_05 else full == base["cuts"][-1]["base_params"]
    counts = [v["base_params"] for v in vinet["variants"]] + [full]
    assert all(a < b for a, b in zip(counts, counts[1:])), counts
    for r in abl["rows"]:  # the same cut gives the same base in notebooks 04 and 05
        if r["variant"] in variants:
            assert r["base_params"] == dict(zip(variants, counts))[r["variant"]], r
    # Every further cut of the ablation figure: the more layers removed, the smaller the base.
    cut_base = sorted({(r["removed_pct"], r["base_params"]) for r in abl["rows"]})
    assert all(a[1] > b[1] for a, b in zip(cut_base, cut_base[1:])), cut_base

    # One baseline accuracy: trained in 01, carried by 04 and 05, printed in the table.
    acc = base["metrics"]["test_acc"]
    assert float(table[f"ResNet{net}"]["Acc (%)"]) == pytest.approx(acc, abs=0.005)
    assert vinet["baseline_acc"] == acc == (abl["baseline"]["acc"] if has_05 else acc)
    for v in vinet["variants"]:
        assert v["acc_vs_baseline"] == pytest.approx(v["acc"] - acc)

    # Interleaving: every model, the full ResNet and each cut, got every repetition.
    runs = speed["metrics"]["throughput"]
    assert set(runs) == {"ResNet (full)"} | {f"VI-Net {v}" for v in variants}
    repeats = speed["params"]["repeats"]
    assert repeats >= 2
    for name, m in runs.items():
        assert len(m["runs"]) == repeats, name
        assert m["mean"] == pytest.approx(sum(m["runs"]) / repeats), name
        assert all(x > 0 for x in m["runs"]), name


WEIGHTS_RUNS = sorted({p.parent for p in REPO_ROOT.glob("results/*/*/01_baseline.weights-*.pt")})


@pytest.mark.parametrize("run", WEIGHTS_RUNS, ids=lambda r: f"{r.parent.name}/{r.name}")
def test_committed_weights_are_small_and_give_the_recorded_accuracy(run):
    """A committed base's half-precision weights: files of at most 15 MB, 25 MB in all,
    and, where its data is on this machine, the recorded test accuracy within 0.1
    points on the very data it recorded (the same fingerprint)."""
    from vinet_utils.network import data as D, train as T
    from vinet_utils.common.results import read_json

    files = T.weights_files(run)
    assert [f.name for f in files] == read_json(run / "01_baseline.json")["weights_files"]
    assert all(f.stat().st_size <= 15 * 10**6 for f in files)
    assert sum(f.stat().st_size for f in files) <= 25 * 10**6
    rec = read_json(run / "01_baseline.json")
    p = rec["params"]
    try:
        ds = D.load_dataset(p["dataset"], n_train=p["n_train"], n_test=p["n_test"],
                            seed=p["seed"], download=False)
    except (D.DataNotFoundError, D.DataCheckError) as err:
        pytest.skip(f"{p['dataset']} is not on this machine: {type(err).__name__}")
    if ds.fingerprint != rec["data"]["fingerprint"]:
        pytest.skip(f"the {p['dataset']} here is not the data this run read")
    model, _ = T.load_baseline(run)
    got = T.evaluate(model, T.image_batches(ds.test_x, ds.test_y, 1000, ds.mean, ds.std, "cpu"))
    assert abs(got["acc"] - rec["metrics"]["test_acc"]) <= 0.1


def test_the_targets_compare_frozen_heads_even_where_a_run_went_end_to_end(tmp_path):
    from vinet_utils import report

    def row(head, v, acc, protocol="frozen"):
        return {"head": head, "variant": v, "acc": acc, "protocol": protocol}

    cuts = ["tiny", "small", "medium", "large"]
    rows = [row(h, v, a + i) for i, v in enumerate(cuts)
            for h, a in (("VI-Net", 80.0), ("linear (flatten)", 79.0))]
    rows += [row("VI-Net", "tiny", 90.0, "end to end"), row("linear (flatten)", "tiny", 70.0, "end to end")]
    speed = {f"VI-Net {v}": {"mean": 150.0} for v in cuts}
    speed["ResNet (full)"] = {"mean": 100.0}
    for name, rec in (("01_baseline.json", {"metrics": {"test_acc": 85.0}}),
                      ("05_ablations.json", {"metrics": {"rows": rows}}),
                      ("06_throughput.json", {"metrics": {"throughput": speed}})):
        (tmp_path / name).write_text(json.dumps(rec))
    first = report.targets(tmp_path).splitlines()[2]
    cells = [c.strip(" |") for c in first.split(" | ")[1:5]]
    # frozen VI-Net minus frozen linear; the end-to-end rows (+20) are not read
    assert cells == ["+1.00 (**missed**)", "+1.00 (**missed**)", "+1.00 (met)", "+1.00 (met)"]


def test_results_files_name_folders_without_the_machine_s_paths(tmp_path):
    """A folder parameter is recorded relative to the repository, or by its name alone;
    no committed results file names an absolute folder."""
    from vinet_utils.common.results import FOLDER_PARAMS, portable_params, read_json

    got = portable_params({"results_dir": str(tmp_path / "res"),
                           "data_dir": str(REPO_ROOT / "data"), "seed": 3})
    assert got == {"results_dir": ".../res", "data_dir": "data", "seed": 3}
    assert portable_params({"data_dir": None}) == {"data_dir": None}
    files = sorted(REPO_ROOT.glob("results/*/*/0*.json"))
    assert files
    for f in files:
        params = read_json(f).get("params", {})
        for key in FOLDER_PARAMS:
            assert params.get(key) is None or not Path(params[key]).is_absolute(), (f.name, key)


def test_executed_notebooks_name_no_absolute_folder():
    """A committed executed notebook re-runs on a reader's machine: neither the parameters
    papermill injected nor its record of them names an absolute folder (a run in the
    default results folder leaves ``results_dir`` unset)."""
    import nbformat

    notebooks = sorted(REPO_ROOT.glob("results/*/*/0*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        meta = nb.metadata.get("papermill", {})
        recorded = [v for v in (meta.get("parameters") or {}).values() if isinstance(v, str)]
        recorded += [meta.get(k) or "" for k in ("input_path", "output_path")]
        assert not [v for v in recorded if Path(v).is_absolute()], path.name
        injected = [c.source for c in nb.cells
                    if "injected-parameters" in c.metadata.get("tags", [])]
        for source in injected:
            assert not re.search(r"""=\s*['"]/""", source), (path.name, source)

def test_no_prose_line_is_wider_than_a_screen():
    """Every page's prose, hand-written or generated, folds at 100 characters; only a
    table row, a code block, or the target of a link (which cannot break) runs longer."""
    import re
    from vinet_utils import report
    for page in report.pages():
        code = False
        for i, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                code = not code
            if code or line.startswith("|"):
                continue
            assert len(re.sub(r"\]\([^)]*\)", "]()", line)) <= report.WIDTH, f"{page.name}:{i}"


def test_no_time_is_typed_by_hand_on_a_page_or_profile():
    """One home per fact: how long a run or stage took comes from its results files
    through one function (``stage_seconds``, a row's ``wall_time_s``) into a generated
    block; prose written by hand and the profiles' comments carry no durations."""
    import re
    from vinet_utils import report

    duration = re.compile(r"(?<![\w.-])\d+(\.\d+)?\s*(min|minutes|hours|h)\b")
    found = []
    for f in report.pages() + sorted((REPO_ROOT / "params").glob("*.yaml")):
        text = re.sub(r"<!-- generated:(\w+) -->.*?<!-- /generated:\1 -->", "", f.read_text(),
                      flags=re.S)
        found += [f"{f.name}: {m.group(0)}" for m in duration.finditer(text)]
    assert not found


def test_the_papers_speed_up_has_one_source():
    """Every page gives the paper's speed-up as the paper's table computes it
    (``paper.paper_speedup``): 100798 / 66533 images/s at tiny is 1.52x, never 1.51x."""
    from vinet_utils.common.paper import paper_speedup
    from vinet_utils import report

    tiny = paper_speedup("cifar10", "resnet18", "tiny")
    assert f"{tiny:.2f}" == "1.52"
    assert f"({tiny:.2f}x)" in (REPO_ROOT / "README.md").read_text()
    assert not [p.name for p in report.pages() if "1.51x" in p.read_text()]


def test_every_module_a_page_tells_to_run_exists():
    """Every ``python -m vinet_utils...`` on a page names a module that is there today
    (commands recorded in earlier results files are shown with their module's new home)."""
    import importlib.util
    import re

    from vinet_utils import report

    named = {m for p in report.pages() for m in re.findall(r"python -m (vinet_utils[\w.]*)", p.read_text())}
    assert named and not [m for m in named if importlib.util.find_spec(m) is None]
