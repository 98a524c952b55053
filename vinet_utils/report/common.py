"""What the report's modules share: where the pages and the committed runs are, the
profiles the pages show, and the small number formats."""

from __future__ import annotations

import yaml

from ..results import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
RUN = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
STUDY = REPO_ROOT / "results" / "study" / "study.json"
PAPER_RUN = REPO_ROOT / "results" / "paper" / "cifar10-resnet18"
VARIANTS = ("tiny", "small", "medium", "large")
C100_RUN = REPO_ROOT / "results" / "cpu-cifar100" / "cifar100-resnet34"
MEMORY = REPO_ROOT / "results" / "benchmarks" / "memory.json"

STAGE_FILES = {"01_baseline_training": "01_baseline.json", "02_latent_features": "02_latents.json",
               "03_vanishing_ideals": "03_ideals.json", "04_vinet_construction": "04_vinet.json",
               "05_evaluation_ablations": "05_ablations.json",
               "06_throughput_table": "06_throughput.json"}

PROTOCOL_RUNS = {"cpu": RUN, "cpu-cifar100": C100_RUN}


def _f(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _pm(mean, std, nd=2) -> str:
    return _f(mean, nd) + ("" if std is None else f" ± {std:.{nd}f}")


#: The profiles the pages show, in this order.
PROFILES = ("smoke", "cpu", "paper", "cpu-cifar100")
_ARCH = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}
_DATA = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashionmnist": "Fashion-MNIST"}


def _profile(name: str) -> dict:
    """``params/<name>.yaml`` with its dataset and arch filled in (cifar10, resnet18)."""
    p = yaml.safe_load((REPO_ROOT / "params" / f"{name}.yaml").read_text())
    return {"dataset": "cifar10", "arch": "resnet18", **p}


def _secs(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 0.1 else f"{t:.2f} s"


def _met(value: float, bound: float, shown: str) -> str:
    return f"{shown} {'(met)' if value >= bound else '(**missed**)'}"


def stale_note(rec: dict) -> str:
    """A sentence naming the heads of a budget curve's results record ``rec`` that
    trained at settings their profile has since replaced
    (:func:`vinet_utils.budget.stale_heads`), or "" when none did."""
    from ..budget import stale_heads

    heads = stale_heads(rec)
    if not heads:
        return ""
    return (f" End to end, {' and '.join(heads)} trained at settings a later search replaced: "
            f"{'their' if len(heads) > 1 else 'its'} rows stand for the old settings until "
            f"`make budget` trains {'them' if len(heads) > 1 else 'it'} again.")

