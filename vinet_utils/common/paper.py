"""The paper's published numbers (docs/method.md §2 and §7), as data for the tables."""

from __future__ import annotations

#: Base parameters (millions) of each cut variant at width 1.0.
BASE_PARAMS_M = {
    "resnet18": {"tiny": 0.68, "small": 2.18, "medium": 3.96, "large": 8.81},
    "resnet34": {"tiny": 2.85, "small": 5.21, "medium": 14.20, "large": 18.92},
}
#: (dataset, arch) -> model -> (total M, base M, poly M, acc %, throughput mean, std).
TABLE = {
    ("cifar10", "resnet18"): {
        "tiny": (1.86, 0.68, 1.18, 88.62, 100798, 20506),
        "small": (2.84, 2.18, 0.66, 92.66, 79307, 15576),
        "medium": (4.35, 3.96, 0.39, 92.92, 71851, 13987),
        "large": (9.20, 8.81, 0.39, 93.02, 62086, 11291),
        "baseline": (11.24, 11.24, None, 92.89, 66533, 12577),
    },
    ("cifar100", "resnet34"): {
        "tiny": (3.52, 2.85, 0.67, 71.94, 42064, 7247),
        "small": (5.88, 5.21, 0.67, 74.03, 37611, 6502),
        "medium": (14.60, 14.20, 0.40, 74.66, 29285, 5791),
        "large": (19.32, 18.92, 0.40, 74.78, 27862, 5358),
        "baseline": (20.35, 20.35, None, 74.75, 28253, 4290),
    },
}
COLUMNS = ("total_M", "base_M", "poly_M", "acc", "throughput", "throughput_std")


def paper_row(dataset: str, arch: str, model: str) -> dict | None:
    """The paper's row for ``model`` ("tiny".."large" or "baseline"), or None."""
    row = TABLE.get((dataset, arch), {}).get(model)
    return dict(zip(COLUMNS, row)) if row else None

#: The data set and network of the paper's ablation figure.
ABLATION_SETTING = ("cifar100", "resnet34")
#: The paper's ablation (CIFAR-100, ResNet-34): test accuracy against % of layers
#: removed, read off the published figure (about +-0.5), docs/method.md §7.
ABLATION_REMOVED_PCT = (0, 19, 25, 32, 38, 44, 51, 57, 63, 76)
ABLATION = {
    "VI-Net": (74.8, 73.1, 73.0, 73.6, 73.2, 71.3, 68.9, 62.8, 61.6, 57.3),
    "linear head on the truncated net": (74.8, 68.8, 65.2, 66.2, 67.0, 64.0, 60.5, 59.9, 56.1, 50.0),
    "random monomials": (74.8, 68.5, 60.1, 61.6, 69.5, 72.5, 69.6, 58.7, 56.9, 45.7),
}


#: How far (in points of layers removed) a cut may lie from a point of the paper's
#: ablation figure for that point to be read as the paper's value at the cut.
ABLATION_NEAR = 5


def nearest_ablation_point(removed_pct: float) -> int:
    """The index in :data:`ABLATION_REMOVED_PCT` nearest ``removed_pct``, the full
    network (index 0) aside."""
    return min(range(1, len(ABLATION_REMOVED_PCT)),
               key=lambda i: abs(ABLATION_REMOVED_PCT[i] - removed_pct))


def ablation_rows() -> list[dict]:
    """The paper's ablation figure as rows ``{"head", "removed_pct", "acc"}``."""
    return [{"head": h, "removed_pct": x, "acc": a} for h, accs in ABLATION.items()
            for x, a in zip(ABLATION_REMOVED_PCT, accs)]


def paper_drop(dataset: str, arch: str, variant: str) -> float | None:
    """The paper's base accuracy minus its VI-Net's at ``variant``."""
    base, vi = paper_row(dataset, arch, "baseline"), paper_row(dataset, arch, variant)
    return None if base is None or vi is None else base["acc"] - vi["acc"]


def ablation_drop(dataset: str, arch: str, removed_pct: float | None) -> float | None:
    """The paper's full network minus its VI-Net read off its ablation figure at the
    point nearest ``removed_pct`` (% of layers removed), within :data:`ABLATION_NEAR`;
    None outside the figure's setting (:data:`ABLATION_SETTING`) or its points."""
    if (dataset, arch) != ABLATION_SETTING or removed_pct is None:
        return None
    i = nearest_ablation_point(removed_pct)
    if abs(ABLATION_REMOVED_PCT[i] - removed_pct) > ABLATION_NEAR:
        return None
    return ABLATION["VI-Net"][0] - ABLATION["VI-Net"][i]


def paper_speedup(dataset: str, arch: str, variant: str) -> float | None:
    """The paper's throughput of its VI-Net at ``variant`` over its full network's: the
    one place every page takes the paper's speed-up from."""
    base, vi = paper_row(dataset, arch, "baseline"), paper_row(dataset, arch, variant)
    return None if base is None or vi is None else vi["throughput"] / base["throughput"]
