"""What the report's modules share: where the pages and the committed runs are, the
profiles the pages show, and the small number formats."""

from __future__ import annotations

import re


from vinet_utils.common.results import REPO_ROOT

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


def fmt(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def plus_minus(mean, std, nd=2) -> str:
    return fmt(mean, nd) + ("" if std is None else f" ± {std:.{nd}f}")


#: The profiles the pages show, in this order.
PROFILES = ("smoke", "cpu", "paper", "cpu-cifar100")
DEFAULT_ARCH = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}
DEFAULT_DATA = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashionmnist": "Fashion-MNIST"}


def profile_values(name: str) -> dict:
    """``params/<name>.yaml`` as a run reads it (``heads_from`` resolved), with its
    dataset and arch filled in (cifar10, resnet18)."""
    from vinet_utils.workflow.pipeline import load_profile
    return {"dataset": "cifar10", "arch": "resnet18", **load_profile(name)}


def listed(items: list[str]) -> str:
    """Words in a sentence's list: ``["tiny", "small", "medium"]`` -> "tiny, small and medium"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 0.1 else f"{t:.2f} s"


def met_or_missed(value: float, bound: float, shown: str) -> str:
    return f"{shown} {'(met)' if value >= bound else '(**missed**)'}"


#: Modules that moved into the subpackages, as the commands in earlier results files name them.
MOVED = {old: f"vinet_utils.{new}" for old, new in (
    ("bench", "experiments.bench"), ("budget", "experiments.budget"), ("sweep", "experiments.sweep"),
    ("protocol", "experiments.protocol"), ("study", "experiments.study"),
    ("throughput", "experiments.throughput"), ("reference", "experiments.reference"),
    ("pipeline", "workflow.pipeline"), ("synthetic", "workflow.synthetic"))}


def runnable(command: str) -> str:
    """A results file's recorded ``command`` as it runs today: a module it names that
    has since moved into a subpackage is named where it is now."""
    return re.sub(r"python -m vinet_utils\.(\w+)\b",
                  lambda m: f"python -m {MOVED.get(m.group(1), 'vinet_utils.' + m.group(1))}", command)
