"""VI-Net: a truncated base followed by a head on its pooled latents (method.md §6).

``VINet(base, head)`` runs base -> global average pool -> head. With a
:class:`~vinet_utils.heads.PolyHead` this is the paper's VI-Net; with the ablation
heads it is the comparison network at the same cut. Heads are fine-tuned on cached
latents when the base is frozen (fast), or end to end on images with augmentation.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from . import data as D
from .models import count_params
from .train import TrainConfig, evaluate, train


class VINet(nn.Module):
    def __init__(self, base: nn.Module, head: nn.Module, freeze_base: bool = True):
        super().__init__()
        self.base, self.head = base, head
        self.freeze_base(freeze_base)

    def freeze_base(self, frozen: bool = True) -> None:
        for p in self.base.parameters():
            p.requires_grad_(not frozen)
        self.base_frozen = frozen

    def train(self, mode: bool = True):
        super().train(mode)
        if self.base_frozen:
            self.base.eval()  # frozen means frozen BatchNorm statistics too
        return self

    def forward(self, x):
        return self.head(self.base(x).mean((2, 3)))

    def param_counts(self) -> dict:
        """Base = the truncated network; Poly = the head; Total = Base + Poly."""
        base, head = count_params(self.base), self.head.count_params()
        return {"base": base, "poly": head, "total": base + head}


def latent_batches(z: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                   seed: int = 0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z), generator=g) if shuffle else torch.arange(len(z))
    for i in range(0, len(z), batch_size):
        idx = order[i:i + batch_size]
        yield z[idx].to(device), y[idx].to(device)


def train_head(head: nn.Module, lat: dict, cfg: TrainConfig, ckpt_path: str | Path,
               device="cpu", progress: bool = True, desc: str = "head") -> dict:
    """Fine-tune ``head`` on cached latents ``{"train", "train_y", "test", "test_y"}``.

    Resumable like any training run; returns the history plus the final accuracy."""
    head.to(device)
    t0 = time.perf_counter()

    def epoch_batches(e):
        return latent_batches(lat["train"], lat["train_y"], cfg.batch_size, shuffle=True,
                              seed=cfg.seed * 100_003 + e, device=device)

    def eval_fn():
        return evaluate(head, latent_batches(lat["test"], lat["test_y"], 4096, shuffle=False,
                                             device=device), device)

    history = train(head, cfg, epoch_batches, D.n_batches(len(lat["train"]), cfg.batch_size),
                    eval_fn, ckpt_path, device=device, progress=progress, desc=desc)
    history["test_acc_final"] = history["test_acc"][-1]
    history["wall_time_s"] = time.perf_counter() - t0
    return history


def poly_head(cf, keep_per_class: int, num_classes: int):
    """Prune the per-class generators of a :class:`~vinet_utils.ideals.CutFit` and build
    the VI-Net head on the kept ones. Returns ``(head, prune_result)``."""
    from .heads import PolyHead
    from .polynomial import PolynomialLayer
    from .pruning import prune

    pr = prune(cf.models, cf.fit_points, keep_per_class)
    poly = PolynomialLayer.from_oavi(cf.models, pr.kept).float()
    return PolyHead(copy.deepcopy(cf.preprocess), poly, num_classes), pr


def finetune(net: VINet, cf, ds, cfg: TrainConfig, run_dir, name: str, device="cpu",
             unfreeze_cfg: TrainConfig | None = None, progress: bool = True) -> dict:
    """Fine-tune a VI-Net: first its head on cached latents (the base frozen), then, when
    ``unfreeze_cfg`` is given, the whole network end to end on augmented images.

    Both phases are resumable. Returns one history over both phases, with ``phase``
    per epoch, ``acc_frozen`` (after phase 1) and ``test_acc_final``."""
    run_dir = Path(run_dir)
    net.freeze_base(True)
    hist = train_head(net.head, cf.latents, cfg, run_dir / f"{name}_head.ckpt", device, progress,
                      desc=f"{name} head")
    hist["phase"] = ["head"] * len(hist["epoch"])
    hist["acc_frozen"] = hist["test_acc_final"]
    if unfreeze_cfg is None:
        return hist
    from .train import train_classifier
    net.freeze_base(False)
    rec = train_classifier(net, ds, unfreeze_cfg, run_dir, name=name, device=device,
                           progress=progress)
    e2e, n = rec["history"], len(hist["epoch"])
    for key in ("train_loss", "test_loss", "test_acc", "epoch_time_s"):
        hist[key] = hist[key] + e2e[key]
    hist["epoch"] = hist["epoch"] + [n + e for e in e2e["epoch"]]
    hist["phase"] += ["end to end"] * len(e2e["epoch"])
    hist["test_acc_final"] = rec["metrics"]["test_acc"]
    hist["wall_time_s"] += rec["wall_time_s"]
    return hist


def load_finetuned(net: VINet, run_dir, name: str, device="cpu") -> VINet:
    """Load the weights a finished :func:`finetune` left in ``<run_dir>/<name>.ckpt``."""
    ckpt = Path(run_dir) / (f"{name}_head.ckpt" if net.base_frozen else f"{name}.ckpt")
    state = torch.load(ckpt, map_location=device, weights_only=False)
    (net.head if net.base_frozen else net).load_state_dict(state["model"])
    return net


def build_and_finetune(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       unfreeze_cfg: TrainConfig | None = None, device="cpu",
                       progress: bool = True) -> dict:
    """Prune, build and fine-tune the VI-Net at one cut (see :func:`finetune`); returns its
    results row, the fine-tuning history and the pruning scores."""
    from .models import truncate

    head, pr = poly_head(cf, keep_per_class, ds.num_classes)
    base = truncate(model, cf.layer)
    # end-to-end training works on a copy, so the baseline's weights stay untouched
    net = VINet(copy.deepcopy(base) if unfreeze_cfg else base, head)
    history = finetune(net, cf, ds, cfg, run_dir, f"04_vinet_{cf.variant}", device,
                       unfreeze_cfg, progress)
    counts = net.param_counts()
    row = {"variant": cf.variant, "cut": cf.layer, "acc": history["test_acc_final"],
           "acc_frozen_base": history["acc_frozen"],
           "base_params": counts["base"], "poly_params": counts["poly"],
           "total_params": counts["total"], "generators_before": sum(m.n_generators_ for m in cf.models),
           "generators_after": head.poly.out_features, "monomials": len(head.poly.exponents),
           "oavi_fit_time_s": cf.fit_time_s, "finetune_time_s": history["wall_time_s"],
           "unfreeze_base": unfreeze_cfg is not None}
    return {"row": row, "history": history, "scores": pr.scores, "kept": pr.kept}


def ablation_heads(cf, kept, head_params: int, num_classes: int, seed: int = 0) -> dict:
    """The paper's comparison heads at the same cut as a VI-Net head that keeps the
    generators ``kept`` (per class) and has ``head_params`` parameters: (a) a linear
    probe, (b) random monomials of the VI-Net's width and degrees, (c) an MLP with about
    the same parameter count."""
    from .heads import LinearHead, MLPHead, RandomMonomialHead

    c = cf.latents["train"].shape[1]
    degrees = [int(d) for m, k in zip(cf.models, kept) for d in m.degrees_[k]]
    return {"linear probe": LinearHead(c, num_classes),
            "random monomials": RandomMonomialHead(copy.deepcopy(cf.preprocess), degrees,
                                                   num_classes, seed),
            "MLP": MLPHead(c, num_classes, head_params)}


def evaluate_ablations(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       device="cpu", progress: bool = True) -> list[dict]:
    """Train every ablation head on cached latents (resumable); one row per head."""
    from .models import truncate

    head, pr = poly_head(cf, keep_per_class, ds.num_classes)
    base = count_params(truncate(model, cf.layer))
    rows = []
    for name, h in ablation_heads(cf, pr.kept, head.count_params(), ds.num_classes,
                                  cfg.seed).items():
        tag = name.replace(" ", "_").lower()
        hist = train_head(h, cf.latents, cfg, Path(run_dir) / f"05_{tag}_{cf.variant}.ckpt", device,
                          progress, desc=f"{name} {cf.variant}")
        rows.append({"variant": cf.variant, "cut": cf.layer, "head": name, "base_params": base,
                     "params": h.count_params(), "total_params": base + h.count_params(),
                     "acc": hist["test_acc_final"]})
    return rows


def rebuild(model, cf, ds, run_dir, *, keep_per_class: int, unfreeze_base: bool = False,
            device="cpu") -> VINet:
    """The fine-tuned VI-Net of notebook 04 at ``cf``'s cut, rebuilt from the cached fits
    and its finished checkpoint."""
    from .models import truncate

    head, _ = poly_head(cf, keep_per_class, ds.num_classes)
    base = truncate(model, cf.layer)
    net = VINet(copy.deepcopy(base) if unfreeze_base else base, head, freeze_base=not unfreeze_base)
    return load_finetuned(net, run_dir, f"04_vinet_{cf.variant}", device).eval()
