"""VI-Net: a truncated base followed by a head on its latents (method.md §6).

``VINet(base, head, pool)`` runs base -> pool (by default flatten the whole map) ->
head. With a :class:`~vinet_utils.heads.PolyHead` this is the paper's VI-Net; with the
ablation heads it is the comparison network at the same cut.

The paper's protocol fine-tunes the head with the base frozen. Heads are then trained
on cached latents, which is cheap, so every head is trained ``seeds`` times, each
repetition with a seed of its own derived from the run's seed, and reported as mean
and standard deviation. Fine-tuning the whole network end to end is an option,
reported on its own.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import data as D
from .latents import Pool
from .models import count_params, truncate
from .params import derive_seed, seed_everything
from .train import TrainConfig, evaluate, train


class VINet(nn.Module):
    def __init__(self, base: nn.Module, head: nn.Module, pool: str = "flatten",
                 freeze_base: bool = True):
        super().__init__()
        self.base, self.pool, self.head = base, Pool(pool), head
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
        return self.head(self.pool(self.base(x)))

    def param_counts(self) -> dict:
        """Base = the truncated network; Poly = the head; Total = Base + Poly."""
        base, head = count_params(self.base), self.head.count_params()
        return {"base": base, "poly": head, "total": base + head}


def latent_batches(z: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                   seed: int = 0, device="cpu"):
    """Batches of cached latents, as float32 (the cache may hold float16)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z), generator=g) if shuffle else torch.arange(len(z))
    for i in range(0, len(z), batch_size):
        idx = order[i:i + batch_size]
        yield z[idx].to(device, torch.float32), y[idx].to(device)


def _init_key(head: nn.Module) -> dict:
    """What identifies a head before training: its structure and initial weights."""
    state = head.state_dict()
    return {"shapes": {k: list(v.shape) for k, v in state.items()},
            "checksum": round(float(sum(v.double().abs().sum() for v in state.values()
                                        if v.is_floating_point())), 6)}


def train_head(head: nn.Module, lat: dict, cfg: TrainConfig, ckpt_path: str | Path,
               device="cpu", progress: bool = True, desc: str = "head") -> dict:
    """Fine-tune ``head`` on cached latents ``{"train", "train_y", "test", "test_y"}``.

    Resumable like any training run (a checkpoint of another head is not reused);
    returns the history plus the final accuracy."""
    head.to(device)
    t0 = time.perf_counter()
    key = _init_key(head)

    def epoch_batches(e):
        return latent_batches(lat["train"], lat["train_y"], cfg.batch_size, shuffle=True,
                              seed=cfg.seed * 100_003 + e, device=device)

    def eval_fn():
        return evaluate(head, latent_batches(lat["test"], lat["test_y"], 4096, shuffle=False,
                                             device=device), device)

    history = train(head, cfg, epoch_batches, D.n_batches(len(lat["train"]), cfg.batch_size),
                    eval_fn, ckpt_path, device=device, progress=progress, desc=desc, key=key)
    history["test_acc_final"] = history["test_acc"][-1]
    history["wall_time_s"] = time.perf_counter() - t0
    return history


def train_seeds(make_head: Callable[[], nn.Module], lat: dict, cfg: TrainConfig, run_dir,
                tag: str, seeds: int, seed: int, device="cpu", progress: bool = True) -> dict:
    """Train ``seeds`` heads made by ``make_head``, repetition ``r`` seeded (weights and
    batch order) by ``derive_seed(seed, tag, r)``. Checkpoints go to
    ``<run_dir>/heads/<tag>-s<r>.ckpt``. Returns the accuracies (``acc`` is the mean,
    ``acc_std`` the sample standard deviation), the histories and the trained heads."""
    accs, hists, heads = [], [], []
    for r in range(seeds):
        s = derive_seed(seed, tag, r)
        seed_everything(s)
        head = make_head()
        hist = train_head(head, lat, dataclasses.replace(cfg, seed=s),
                          Path(run_dir) / "heads" / f"{tag}-s{r}.ckpt", device, progress,
                          desc=f"{tag} seed {r}")
        accs.append(hist["test_acc_final"])
        hists.append(hist)
        heads.append(head)
    return {"acc": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if seeds > 1 else 0.0,
            "acc_per_seed": accs, "histories": hists, "heads": heads,
            "params": heads[0].count_params(),
            "wall_time_s": sum(h["wall_time_s"] for h in hists)}


def poly_head(cf, keep_per_class: int, num_classes: int, train_projection: bool = False):
    """Prune the per-class generators of a :class:`~vinet_utils.ideals.CutFit` and build
    the VI-Net head on the kept ones. Returns ``(head, prune_result)``."""
    from .heads import PolyHead
    from .polynomial import PolynomialLayer
    from .pruning import prune

    pr = prune(cf.models, cf.fit_points, keep_per_class)
    poly = PolynomialLayer.from_oavi(cf.models, pr.kept).float()
    pre = copy.deepcopy(cf.preprocess).trainable(train_projection)
    return PolyHead(pre, poly, num_classes), pr


def safe_name(name: str) -> str:
    """A head's name as it appears in file names and seed tags."""
    return name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "and")


def _tag(cf, name: str) -> str:
    """The tag of the head ``name`` at ``cf``'s cut and pool (checkpoints, seeds)."""
    return f"{cf.layer}-{cf.pool}-{safe_name(name)}"


def build_and_finetune(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       seeds: int = 1, seed: int = 0, train_projection: bool = False,
                       unfreeze_cfg: TrainConfig | None = None, device="cpu",
                       progress: bool = True) -> dict:
    """Prune and build the VI-Net at one cut, fine-tune its head with the base frozen
    ``seeds`` times (the paper's protocol: the table's accuracy is their mean), and,
    with ``unfreeze_cfg``, fine-tune the first of them end to end as well.

    Returns the results row, the fine-tuning histories and the pruning scores."""
    template, pr = poly_head(cf, keep_per_class, ds.num_classes, train_projection)
    heads = train_seeds(lambda: _fresh(template), cf.latents, cfg, run_dir,
                        _tag(cf, f"vinet-k{keep_per_class}"), seeds, seed, device, progress)
    base = truncate(model, cf.layer)
    net = VINet(base, heads["heads"][0], cf.pool)
    counts = net.param_counts()
    row = {"variant": cf.variant, "cut": cf.layer, "pool": cf.pool,
           "acc": heads["acc"], "acc_std": heads["acc_std"], "acc_per_seed": heads["acc_per_seed"],
           "base_params": counts["base"], "poly_params": counts["poly"],
           "total_params": counts["total"], "projection_params": template.preprocess.count_params(),
           "generators_before": sum(m.n_generators_ for m in cf.models),
           "generators_after": template.poly.out_features, "monomials": len(template.poly.exponents),
           "oavi_fit_time_s": cf.fit_time_s, "finetune_time_s": heads["wall_time_s"],
           "acc_end_to_end": None}
    histories = {"frozen": heads["histories"]}
    if unfreeze_cfg is not None:
        rec = finetune_end_to_end(model, cf, heads["heads"][0], ds, unfreeze_cfg, run_dir,
                                  device, progress)
        row["acc_end_to_end"] = rec["metrics"]["test_acc"]
        row["finetune_time_s"] += rec["wall_time_s"]
        histories["end_to_end"] = rec["history"]
    return {"row": row, "histories": histories, "scores": pr.scores, "kept": pr.kept}


def _fresh(template: nn.Module) -> nn.Module:
    """A copy of ``template`` whose trainable layers after the polynomial layer are
    re-initialised from the current torch seed (the fitted parts stay as fitted)."""
    head = copy.deepcopy(template)
    for m in (head.norm, head.linear):
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return head


def finetune_end_to_end(model, cf, head, ds, cfg: TrainConfig, run_dir, device="cpu",
                        progress: bool = True) -> dict:
    """Fine-tune a copy of the truncated base together with a trained ``head`` on
    augmented images (an option beyond the paper's protocol). Resumable; returns the
    training record of ``04_vinet_<variant>_e2e``."""
    from .train import train_classifier

    net = VINet(copy.deepcopy(truncate(model, cf.layer)), copy.deepcopy(head), cf.pool,
                freeze_base=False)
    return train_classifier(net, ds, cfg, run_dir, name=f"04_vinet_{cf.variant}_e2e",
                            device=device, progress=progress)


def ablation_heads(cf, kept, head_params: int, num_classes: int,
                   train_projection: bool = False) -> dict:
    """The comparison heads at the same cut and on the same latents as a VI-Net head
    that keeps the generators ``kept`` (per class) and has ``head_params`` parameters:
    a linear head, random monomials of the VI-Net's width and degrees, an MLP of about
    the same size, and the projection -> tanh -> linear head without polynomials.
    Each value makes a fresh head."""
    from .heads import LinearHead, MLPHead, ProjectionHead, RandomMonomialHead

    d = cf.latents["train"].shape[1]
    degrees = [int(x) for m, k in zip(cf.models, kept) for x in m.degrees_[k]]

    def pre():
        return copy.deepcopy(cf.preprocess).trainable(train_projection)

    return {f"linear ({cf.pool})": lambda: LinearHead(d, num_classes),
            "random monomials": lambda: RandomMonomialHead(pre(), degrees, num_classes,
                                                           int(torch.randint(2**31, ()))),
            "MLP": lambda: MLPHead(d, num_classes, head_params),
            "projection + linear": lambda: ProjectionHead(pre(), num_classes)}


def evaluate_ablations(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       seeds: int = 1, seed: int = 0, train_projection: bool = False,
                       cf_pooled=None, device="cpu", progress: bool = True) -> list[dict]:
    """Train every ablation head ``seeds`` times on cached latents (resumable); one row
    per head. With ``cf_pooled`` (the same cut fitted on globally pooled latents), a
    linear probe and a VI-Net on the pooled map are added, to show what the spatial
    layout is worth."""
    template, pr = poly_head(cf, keep_per_class, ds.num_classes, train_projection)
    base = count_params(truncate(model, cf.layer))
    jobs = [(cf, name, make) for name, make in ablation_heads(
        cf, pr.kept, template.count_params(), ds.num_classes, train_projection).items()]
    if cf_pooled is not None:
        from .heads import LinearHead
        pooled, _ = poly_head(cf_pooled, keep_per_class, ds.num_classes, train_projection)
        d = cf_pooled.latents["train"].shape[1]
        jobs += [(cf_pooled, f"linear ({cf_pooled.pool})", lambda: LinearHead(d, ds.num_classes)),
                 (cf_pooled, f"VI-Net ({cf_pooled.pool})", lambda: _fresh(pooled))]
    rows = []
    for c, name, make in jobs:
        res = train_seeds(make, c.latents, cfg, run_dir, _tag(c, name), seeds, seed, device,
                          progress)
        rows.append({"variant": cf.variant, "cut": cf.layer, "head": name, "pool": c.pool,
                     "base_params": base, "params": res["params"],
                     "total_params": base + res["params"], "acc": res["acc"],
                     "acc_std": res["acc_std"], "acc_per_seed": res["acc_per_seed"],
                     "wall_time_s": res["wall_time_s"]})
    return rows


def rebuild(model, cf, ds, run_dir, *, keep_per_class: int, train_projection: bool = False,
            unfreeze_base: bool = False, device="cpu") -> VINet:
    """The fine-tuned VI-Net of notebook 04 at ``cf``'s cut (its first seed, or the
    end-to-end one with ``unfreeze_base``), rebuilt from the cached fits and its
    finished checkpoint."""
    head, _ = poly_head(cf, keep_per_class, ds.num_classes, train_projection)
    if unfreeze_base:
        net = VINet(copy.deepcopy(truncate(model, cf.layer)), head, cf.pool, freeze_base=False)
        ckpt = Path(run_dir) / f"04_vinet_{cf.variant}_e2e.ckpt"
    else:
        net = VINet(truncate(model, cf.layer), head, cf.pool)
        ckpt = Path(run_dir) / "heads" / f"{_tag(cf, f'vinet-k{keep_per_class}')}-s0.ckpt"
    state = torch.load(ckpt, map_location=device, weights_only=False)["model"]
    (net if unfreeze_base else net.head).load_state_dict(state)
    return net.eval()
