"""VI-Net: a truncated base followed by a head on its latents (docs/method.md §6).

``VINet(base, head, pool)`` runs base -> pool (by default flatten the whole map) ->
head. With a :class:`~vinet_utils.heads.PolyHead` this is the paper's VI-Net; with the
ablation heads it is the comparison network at the same cut.

The paper's protocol fine-tunes the head with the base frozen. Heads are then trained
on cached latents, which is cheap, so every head is trained ``seeds`` times, each
repetition with a seed of its own derived from the run's seed, and reported as mean
and standard deviation. Fine-tuning the whole network end to end (base unfrozen) is
the other reading of the paper's protocol; it is run for VI-Net and the comparison
heads alike, with one budget, and reported beside the frozen numbers.
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
from .results import checksum
from .seeds import derive_seed, seed_everything
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
        z = self.pool(self.base(x))
        with torch.autocast(z.device.type, enabled=False):  # the head in float32
            return self.head(z.float())

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
            "checksum": checksum(v for v in state.values() if v.is_floating_point())}


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
                                             device=device), device, amp=False)

    history = train(head, cfg, epoch_batches, D.n_batches(len(lat["train"]), cfg.batch_size),
                    eval_fn, ckpt_path, device=device, progress=progress, desc=desc, key=key,
                    amp=False)
    history["test_acc_final"] = history["test_acc"][-1]
    history["wall_time_s"] = time.perf_counter() - t0
    return history


def train_seeds(make_head: Callable[[], nn.Module], lat: dict, cfg: TrainConfig, run_dir,
                tag: str, seeds: int, seed: int, device="cpu", progress: bool = True) -> dict:
    """Train ``seeds`` heads made by ``make_head``, repetition ``r`` seeded (weights and
    batch order) by ``derive_seed(seed, tag, r)``. Checkpoints go to
    ``<run_dir>/heads/<tag>-s<r>.ckpt``. Returns the accuracies (``acc`` is the mean,
    ``acc_std`` the sample standard deviation), the histories and the trained heads.
    On a GPU the latents move there once, not batch by batch."""
    lat = {k: v.to(device) if torch.is_tensor(v) else v for k, v in lat.items()}
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


def vinet_heads(cf, keep_per_class: int, num_classes: int, train_projection: bool = False):
    """Prune and build, once: ``(make, template, prune_result)``, where ``make()``
    returns a fresh VI-Net head for one training (the fitted projection and
    polynomial layer as fitted, the layers after them initialised from the current
    torch seed). Notebook 04, the ablations and the sweep all build VI-Net here."""
    template, pr = poly_head(cf, keep_per_class, num_classes, train_projection)
    return (lambda: _fresh(template)), template, pr


def safe_name(name: str) -> str:
    """A head's name as it appears in file names and seed tags."""
    return name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "and")


def _tag(cf, name: str) -> str:
    """The tag of the head ``name`` at ``cf``'s cut and pool (checkpoints, seeds)."""
    return f"{cf.layer}-{cf.pool}-{safe_name(name)}"


def build_and_finetune(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       seeds: int = 1, seed: int = 0, train_projection: bool = False,
                       device="cpu", progress: bool = True) -> dict:
    """Prune and build the VI-Net at one cut and fine-tune its head with the base frozen
    ``seeds`` times (the paper's protocol: the table's accuracy is their mean).
    End-to-end fine-tuning is :func:`evaluate_ablations`' business, for every head alike.

    Returns the results row, the fine-tuning histories and the pruning scores."""
    make, template, pr = vinet_heads(cf, keep_per_class, ds.num_classes, train_projection)
    heads = train_seeds(make, cf.latents, cfg, run_dir, _tag(cf, f"vinet-k{keep_per_class}"),
                        seeds, seed, device, progress)
    base = truncate(model, cf.layer)
    net = VINet(base, heads["heads"][0], cf.pool)
    counts = net.param_counts()
    row = {"variant": cf.variant, "cut": cf.layer, "pool": cf.pool,
           "acc": heads["acc"], "acc_std": heads["acc_std"], "acc_per_seed": heads["acc_per_seed"],
           "base_params": counts["base"], "poly_params": counts["poly"],
           "total_params": counts["total"], "projection_params": template.preprocess.count_params(),
           "generators_before": sum(m.n_generators_ for m in cf.models),
           "generators_after": template.poly.out_features, "monomials": len(template.poly.exponents),
           "oavi_fit_time_s": cf.fit_time_s, "finetune_time_s": heads["wall_time_s"]}
    return {"row": row, "histories": {"frozen": heads["histories"]}, "scores": pr.scores,
            "kept": pr.kept}


def _fresh(template: nn.Module) -> nn.Module:
    """A copy of ``template`` whose trainable layers after the polynomial layer are
    re-initialised from the current torch seed (the fitted parts stay as fitted)."""
    head = copy.deepcopy(template)
    for m in (head.norm, head.linear):
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return head


#: The heads that are also fine-tuned end to end (base unfrozen) when asked: VI-Net and
#: the three comparison heads without polynomials.
END_TO_END_HEADS = ("VI-Net", "linear (flatten)", "projection + linear", "MLP")


def finetune_end_to_end(model, cf, head, ds, cfg: TrainConfig, run_dir, tag: str,
                        device="cpu", progress: bool = True) -> dict:
    """Fine-tune a copy of the truncated base together with a copy of the trained
    ``head`` on augmented images, every parameter trainable. Resumable, and keyed by
    the head's trained weights (``<run_dir>/heads/<tag>-e2e.ckpt``); returns the
    training record."""
    from .train import train_classifier

    net = VINet(copy.deepcopy(truncate(model, cf.layer)), copy.deepcopy(head), cf.pool,
                freeze_base=False)
    return train_classifier(net, ds, cfg, Path(run_dir) / "heads", name=f"{tag}-e2e",
                            device=device, progress=progress,
                            key={"head": tag, "trained_head": _init_key(head)}, strict=False)


def budget_keep_per_class(cf, head_params: int, num_classes: int,
                          train_projection: bool = False) -> int:
    """The fewest generators per class whose VI-Net head has at least ``head_params``
    parameters beyond its projection (all of them when even that falls short)."""
    most = max(m.n_generators_ for m in cf.models)

    def beyond_projection(k):
        head, _ = poly_head(cf, k, num_classes, train_projection)
        return head.count_params() - head.preprocess.count_params()

    lo, hi = 1, max(most, 1)
    if beyond_projection(hi) < head_params:
        return hi
    while lo < hi:  # the head grows with k: the smallest k that reaches the budget
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if beyond_projection(mid) < head_params else (lo, mid)
    return lo


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
                       cf_pooled=None, budget_head_params: int | None = None,
                       end_to_end: TrainConfig | None = None, end_to_end_seeds: int = 1,
                       device="cpu", progress: bool = True) -> list[dict]:
    """Every head at one cut, one row per head and protocol (resumable throughout).

    With the base frozen (protocol "frozen"), each head is trained ``seeds`` times on
    cached latents: VI-Net (the same checkpoints as notebook 04), the comparison heads
    of :func:`ablation_heads`, and:

    - with ``budget_head_params``, a VI-Net keeping as many generators as that budget
      of parameters beyond the projection buys (the paper's head size), with random
      monomials and an MLP of its size;
    - with ``cf_pooled`` (the same cut fitted on globally pooled latents), a linear
      probe and a VI-Net on the pooled map, to show what the spatial layout is worth.

    With ``end_to_end``, the first ``end_to_end_seeds`` trained heads of each of
    :data:`END_TO_END_HEADS` are then fine-tuned together with the truncated base on
    augmented images, every head with the same budget (protocol "end to end")."""
    from .heads import LinearHead

    C = ds.num_classes
    make, template, pr = vinet_heads(cf, keep_per_class, C, train_projection)
    base = count_params(truncate(model, cf.layer))
    jobs = [(cf, "VI-Net", make, _tag(cf, f"vinet-k{keep_per_class}"))]
    jobs += [(cf, name, make, _tag(cf, name)) for name, make in ablation_heads(
        cf, pr.kept, template.count_params(), C, train_projection).items()]
    if budget_head_params is not None:
        k = budget_keep_per_class(cf, budget_head_params, C, train_projection)
        make_big, big, big_pr = vinet_heads(cf, k, C, train_projection)
        rivals = ablation_heads(cf, big_pr.kept, big.count_params(), C, train_projection)
        jobs += [(cf, "VI-Net (paper budget)", make_big, _tag(cf, f"vinet-k{k}")),
                 (cf, "random monomials (paper budget)", rivals["random monomials"],
                  _tag(cf, f"random monomials k{k}")),
                 (cf, "MLP (paper budget)", rivals["MLP"], _tag(cf, f"MLP p{big.count_params()}"))]
    if cf_pooled is not None:
        make_pooled, _, _ = vinet_heads(cf_pooled, keep_per_class, C, train_projection)
        dp = cf_pooled.latents["train"].shape[1]
        jobs += [(cf_pooled, f"linear ({cf_pooled.pool})", lambda: LinearHead(dp, C),
                  _tag(cf_pooled, f"linear ({cf_pooled.pool})")),
                 (cf_pooled, f"VI-Net ({cf_pooled.pool})", make_pooled,
                  _tag(cf_pooled, f"VI-Net ({cf_pooled.pool})"))]
    rows, trained = [], {}
    for c, name, make, tag in jobs:
        res = train_seeds(make, c.latents, cfg, run_dir, tag, seeds, seed, device, progress)
        trained[name] = (tag, res["heads"])
        rows.append(_row(cf, name, c.pool, "frozen", base, res["params"], res["acc_per_seed"],
                         res["wall_time_s"], generators=getattr(res["heads"][0], "poly", None),
                         saturated=saturation(res["heads"][0], c.latents["test"])))
    if end_to_end is not None:
        for name in END_TO_END_HEADS:
            tag, heads = trained[name]
            accs, t = [], 0.0
            for r, head in enumerate(heads[:end_to_end_seeds]):
                rec = finetune_end_to_end(
                    model, cf, head, ds, dataclasses.replace(
                        end_to_end, seed=derive_seed(seed, tag, "end to end", r)),
                    run_dir, f"{tag}-s{r}", device, progress)
                accs.append(rec["metrics"]["test_acc"])
                t += rec["wall_time_s"]
            rows.append(_row(cf, name, cf.pool, "end to end", base, heads[0].count_params(),
                             accs, t))
    return rows


@torch.no_grad()
def saturation(head: nn.Module, z: torch.Tensor, n: int = 2000, level: float = 0.99) -> float | None:
    """The share of a trained head's projected coordinates tanh(...) beyond ``level`` in
    absolute value on the first ``n`` latents ``z``; None for heads without a projection.
    Near 1, every projected feature is stuck at +-1 and carries no information."""
    pre = getattr(head, "preprocess", None)
    if pre is None:
        return None
    return float((pre(z[:n].float()).abs() > level).float().mean())


def _row(cf, head: str, pool: str, protocol: str, base: int, params: int, accs: list,
         wall_time_s: float, generators=None, saturated: float | None = None) -> dict:
    """One head's results row: mean and sample std over its seeds."""
    return {"variant": cf.variant, "cut": cf.layer, "head": head, "pool": pool,
            "protocol": protocol, "base_params": base, "params": params,
            "total_params": base + params, "acc": statistics.fmean(accs),
            "acc_std": statistics.stdev(accs) if len(accs) > 1 else None,
            "acc_per_seed": accs, "seeds": len(accs), "wall_time_s": wall_time_s,
            "generators": None if generators is None else generators.out_features,
            "projection_saturated": saturated}


def rebuild(model, cf, ds, run_dir, *, keep_per_class: int, train_projection: bool = False,
            device="cpu") -> VINet:
    """The fine-tuned VI-Net of notebook 04 at ``cf``'s cut (its first seed), rebuilt
    from the cached fits and its finished checkpoint."""
    head, _ = poly_head(cf, keep_per_class, ds.num_classes, train_projection)
    net = VINet(truncate(model, cf.layer), head, cf.pool)
    ckpt = Path(run_dir) / "heads" / f"{_tag(cf, f'vinet-k{keep_per_class}')}-s0.ckpt"
    net.head.load_state_dict(torch.load(ckpt, map_location=device, weights_only=False)["model"])
    return net.eval()
