"""Notebook parameters: validation with clear errors, and where a run's files live.

Every check names the parameter, the bad value and what is allowed, and runs before
any expensive work.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vinet_utils.oavi import check_tau
from vinet_utils.common.results import (BASE_IDENTITY, REPO_ROOT, base_mismatch,  # noqa: F401
                                        other_base_message, shown)


def choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))} (got {value!r})")


def resolve_device(device: str | None) -> str:
    """``"auto"``/``None`` -> cuda when available, else cpu; otherwise checked."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    choice("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA device; "
                         "use device='cpu' or 'auto'")
    return device


def resolve_results_dir(results_dir: str | None) -> Path:
    """``results_dir`` if given, else ``$VINET_RESULTS_DIR``, else ``<repo>/results``."""
    return Path(results_dir or os.environ.get("VINET_RESULTS_DIR") or REPO_ROOT / "results")


def run_dir(results_dir: str | None, profile: str, dataset: str, arch: str,
            run_name: str | None = None) -> Path:
    """``<results_dir>/<profile>/<dataset>-<arch>[-<run_name>]``, created. A base that
    differs from its profile's (another width, more epochs) gets a ``run_name`` and so
    a folder of its own."""
    path = run_path(results_dir, profile, dataset, arch, run_name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_path(results_dir: str | None, profile: str, dataset: str, arch: str,
             run_name: str | None = None) -> Path:
    """Where :func:`run_dir` puts a run, without creating it."""
    _plain_name("profile", profile)
    if run_name is not None:
        _plain_name("run_name", run_name)
    suffix = f"-{run_name}" if run_name else ""
    return resolve_results_dir(results_dir) / profile / f"{dataset}-{arch}{suffix}"


def check_same_base(run: Path, asked: dict) -> None:
    """Stop with a ``ValueError`` naming every parameter in which ``asked`` differs
    from the finished baseline in ``run`` (if there is one); checked before any work."""
    from vinet_utils.common.results import read_json

    path = Path(run) / "01_baseline.json"
    if not path.exists():
        return
    done = read_json(path)
    if not done.get("finished"):
        return
    differ = base_mismatch(done.get("params", {}), asked)
    if differ:
        raise ValueError(other_base_message(run, "baseline", differ))


def _int(low=1):
    def check(name, v):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an integer >= {low} (got {v!r})")
    return check


def _num(low, high, low_open=False):
    def check(name, v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = ok and (low < v if low_open else low <= v) and v <= high
        if not ok:
            lo = f"> {low}" if low_open else f">= {low}"
            raise ValueError(f"{name} must be a number {lo} and <= {high} (got {v!r})")
    return check


def _optional(check):
    def opt(name, v):
        if v is not None:
            check(name, v)
    return opt


def _one_of(*allowed):
    return lambda name, v: choice(name, v, allowed)


def _variants(name, v):
    from vinet_utils.network.models import VARIANTS
    if isinstance(v, str) or not v or any(x not in VARIANTS for x in v):
        raise ValueError(f"{name} must be a non-empty list drawn from {', '.join(VARIANTS)} "
                         f"(got {v!r})")


def _cuts(name, v):
    from vinet_utils.network.models import is_layer_name
    if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(map(is_layer_name, v)):
        raise ValueError(f"{name} must be a list of layer names like 'layer2', 'layer3.1' or "
                         f"'layer3.1.conv1' (got {v!r})")


def check_cuts_exist(arch: str, cuts) -> None:
    """Every cut of ``cuts`` exists in ``arch`` (a block index within its stage)."""
    from vinet_utils.network.models import build, truncate
    model = build(arch, width=1 / 64)
    for c in cuts:
        try:
            truncate(model, c)
        except ValueError as err:
            raise ValueError(f"ablation_cuts: {err} in {arch}") from None


def _pool(name, v):
    from vinet_utils.method.latents import POOLS  # latents imports nothing from here: no cycle
    choice(name, v, POOLS)


def _plain_name(name, v):
    if not isinstance(v, str) or not v or set(v) & set("/\\ "):
        raise ValueError(f"{name} must be a plain name without '/', '\\' or spaces, like "
                         f"'smoke', 'cpu' or 'w0.5-e30' (got {v!r})")


def _path(name, v):
    if v is not None and not isinstance(v, (str, os.PathLike)):
        raise ValueError(f"{name} must be a folder path or None (got {v!r})")


#: The comparison heads of notebook 05 whose training a profile may set apart from
#: VI-Net's (``rival_settings``; ``ablations.rival_of`` maps a head to its entry), and
#: what it may set for each: the linear head and the MLP have no projection, and
#: random monomials are not fine-tuned end to end (``ablations.END_TO_END_HEADS``).
_E2E = ("unfreeze_lr", "unfreeze_base_lr_scale", "unfreeze_bn_stats")
RIVAL_SETTINGS = {"linear": ("finetune_lr",) + _E2E, "MLP": ("finetune_lr",) + _E2E,
                  "projection + linear": ("finetune_lr", "train_projection") + _E2E,
                  "random monomials": ("finetune_lr", "train_projection")}


def _rival_settings(name, v):
    if v is None:
        return
    if not isinstance(v, dict):
        raise ValueError(f"{name} must be None or a mapping from a comparison head to its "
                         f"settings (got {v!r})")
    for head, settings in v.items():
        if head not in RIVAL_SETTINGS:
            raise ValueError(f"{name}: unknown head {head!r}; known: "
                             f"{', '.join(RIVAL_SETTINGS)}")
        if not isinstance(settings, dict) or not set(settings) <= set(RIVAL_SETTINGS[head]):
            raise ValueError(f"{name}[{head!r}] may set {', '.join(RIVAL_SETTINGS[head])} "
                             f"(got {settings!r})")
        for k, x in settings.items():
            RULES[k](f"{name}[{head!r}].{k}", x)


#: How each notebook parameter is checked. Every notebook validates all of its
#: parameters through ``validate`` before doing any work.
RULES = {
    "profile": _plain_name,
    "run_name": _optional(_plain_name),
    "dataset": _one_of("cifar10", "cifar100", "fashionmnist"),
    "arch": _one_of("resnet18", "resnet34"),
    "width": _num(0, 4, low_open=True),
    "epochs": _int(1),
    "batch_size": _int(1),
    "lr": _num(0, 10, low_open=True),
    "lr_batch_size": _optional(_int(1)),
    "schedule": _one_of("onecycle", "cosine", "constant"),
    "weight_decay": _num(0, 1),
    "label_smoothing": _num(0, 0.99),
    "seed": _int(0),
    "n_train": _optional(_int(10)),
    "n_test": _optional(_int(10)),
    "holdout_frac": _num(0, 0.5),  # data.load_dataset: 0 holds nothing out
    "data_dir": _path,
    "results_dir": _path,
    "device": _one_of("auto", "cpu", "cuda"),
    "variants": _variants,
    "seeds": _int(1),
    "pool": _pool,
    "train_projection": _one_of(False, True, "slow", "normalized"),  # latents.PROJECTION_MODES
    "pca_dim": _int(1),
    "psi": _num(0, 1, low_open=True),
    "tau": check_tau,  # the rule OAVI applies: None, a number >= 2, or inf
    "max_degree": _int(1),
    "oracle": _one_of("ihb", "bpcg", "fw", "abm"),
    "samples_per_class": _int(2),
    "keep_per_class": _int(1),
    "finetune_epochs": _int(1),
    "finetune_lr": _num(0, 10, low_open=True),
    "finetune_batch_size": _int(1),
    "rival_settings": _rival_settings,
    "unfreeze_base": _one_of(True, False),
    "unfreeze_epochs": _int(1),
    "unfreeze_lr": _num(0, 10, low_open=True),
    "unfreeze_base_lr_scale": _num(0, 100, low_open=True),
    "unfreeze_bn_stats": _one_of("update", "frozen"),  # ablations.BN_STATS
    "unfreeze_variants": _variants,
    "ablation_cuts": _cuts,
    "unfreeze_seeds": _int(1),
    "budget_head_params": _optional(_int(1)),
    "gap_heads": _one_of(True, False),
    "repeats": _int(2),
    "eval_batch_size": _int(1),
    "throughput_batches": _optional(_int(1)),
    "compile": _one_of(True, False),
}


def validate(**params) -> dict:
    """Check every parameter against ``RULES``; raise a ``ValueError`` that names the
    first bad one, its value and what is allowed. Returns the parameters unchanged."""
    for name, value in params.items():
        if name not in RULES:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(sorted(RULES))}")
        RULES[name](name, value)
    if params.get("ablation_cuts") and params.get("arch"):
        check_cuts_exist(params["arch"], params["ablation_cuts"])
    if params.get("unfreeze_seeds", 1) > params.get("seeds", float("inf")):
        raise ValueError(f"unfreeze_seeds must be at most seeds={params['seeds']}: the heads "
                         f"fine-tuned end to end are the trained ones "
                         f"(got {params['unfreeze_seeds']})")
    return params


def rival_of(head: str) -> str:
    """The ``rival_settings`` entry that a head of notebook 05 is trained by:
    ``linear (flatten)`` -> ``linear``, ``MLP (paper budget)`` -> ``MLP``."""
    return "linear" if head.startswith("linear (") else head.removesuffix(" (paper budget)")
