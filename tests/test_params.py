import subprocess
import sys

import pytest

from vinet_utils.workflow import params as P
from vinet_utils.common.results import REPO_ROOT


@pytest.mark.parametrize("kw,msg", [
    (dict(arch="resnet50"), "arch must be one of resnet18, resnet34 (got 'resnet50')"),
    (dict(dataset="svhn"), "dataset must be one of cifar10, cifar100, fashionmnist"),
    (dict(epochs=0), "epochs must be an integer >= 1 (got 0)"),
    (dict(psi=-1.0), "psi must be a number > 0"),
    (dict(variants=["huge"]), "variants must be a non-empty list drawn from tiny, small"),
    (dict(device="tpu"), "device must be one of auto, cpu, cuda"),
    (dict(nonsense=1), "unknown parameter 'nonsense'"),
])
def test_bad_parameters_name_the_parameter_and_allowed_values(kw, msg):
    with pytest.raises(ValueError) as err:
        P.validate(**kw)
    assert msg in str(err.value)


def test_good_parameters_pass():
    assert P.validate(arch="resnet34", dataset="cifar100", n_train=None, variants=["tiny"])


def test_every_profile_is_valid():
    from vinet_utils.workflow.pipeline import load_profile
    for path in (REPO_ROOT / "params").glob("*.yaml"):
        P.validate(**load_profile(path.stem))


def test_the_paper_profile_takes_every_heads_settings_from_the_cpu_search():
    """params/paper.yaml holds no copy of the heads' settings: it reads them from the
    committed cpu search, as the cpu profile adopted them."""
    import yaml

    from vinet_utils.common.results import read_json
    from vinet_utils.workflow.pipeline import load_profile
    from vinet_utils.workflow.searches import chosen_settings

    raw = yaml.safe_load((REPO_ROOT / "params" / "paper.yaml").read_text())
    chosen = chosen_settings(read_json(REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
                                       / "protocol.json")["metrics"])
    assert raw["heads_from"] == "cpu" and not set(chosen) & set(raw)
    paper, cpu = load_profile("paper"), load_profile("cpu")
    assert {k: paper[k] for k in chosen} == chosen == {k: cpu[k] for k in chosen}


@pytest.mark.parametrize("args,msg", [
    (["--profile", "gpu"], "PROFILE must be one of cpu, cpu-cifar100, paper, smoke"),
    (["--profile", "smoke", "--arch", "vgg"], "arch must be one of resnet18, resnet34"),
])
def test_pipeline_rejects_bad_parameters_before_any_work(args, msg, tmp_path):
    out = subprocess.run([sys.executable, "-m", "vinet_utils.workflow.pipeline", *args,
                          "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode != 0 and msg in out.stderr
    # stopped before any stage: no notebook started, no run folder made
    assert "== 01" not in out.stdout and not any(tmp_path.iterdir())


def test_the_inline_engine_injects_parameters_after_the_parameters_cell(tmp_path, monkeypatch):
    """``--engine inline`` runs a notebook's code cells in order, the given parameters
    overriding the parameters cell's defaults, as papermill does."""
    import json

    from vinet_utils.workflow import pipeline

    out = tmp_path / "seen.txt"
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]},
              "source": ["a = 1\n", "b = 'default'\n"], "outputs": [], "execution_count": None},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": [f"open({str(out)!r}, 'w').write(f'{{a}} {{b}}')\n"]}]
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert pipeline.notebook_parameters(nb) == {"a", "b"}
    pipeline.execute_inline(nb, {"a": 7})
    assert out.read_text() == "7 default"
    with pytest.raises(ValueError, match="engine must be one of auto, papermill, inline"):
        pipeline.resolve_engine("jupyter")


def test_tidied_notebooks_keep_one_output_per_stream_with_bars_in_their_final_state(tmp_path):
    import nbformat

    from vinet_utils.workflow import pipeline

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("work()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="\rbar:   0%| 0/2"),
                    nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="\rbar:  50%| 1/2"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "3"},
                                           execution_count=1),
                    nbformat.v4.new_output("stream", name="stderr", text="\rbar: 100%| 2/2\n\r    \r"),
                    nbformat.v4.new_output("stream", name="stdout", text="done\n")]
    nb.cells.append(cell)
    nb.metadata["papermill"] = {"input_path": str(pipeline.NOTEBOOKS / "x.ipynb")}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    pipeline.tidy_notebook(path)
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.get("name", o.output_type) for o in out] == ["stderr", "stdout", "execute_result"]
    assert out[0].text == "bar: 100%| 2/2\n" and out[1].text == "hello\ndone\n"
    assert not nbformat.read(path, as_version=4).metadata["papermill"]["input_path"].startswith("/")
