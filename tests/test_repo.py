"""The repository keeps its promises: one pinned stack, notebooks shaped as narratives."""

import json

import yaml

from vinet_utils.results import REPO_ROOT


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
    """Every generated block of the README equals what the results files and the
    profiles give now (python -m vinet_utils.report rewrites them)."""
    from vinet_utils import report
    text = report.README.read_text()
    blocks = set(report.re.findall(r"<!-- generated:(\w+) -->", text))
    assert blocks == set(report.BLOCKS), blocks
    assert report.render(text) == text, "run: python -m vinet_utils.report"
