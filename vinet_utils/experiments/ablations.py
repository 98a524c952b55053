"""The experiments VI-Net is judged by: every comparison head at the same cut, under both
readings of the paper's protocol (docs/method.md §7).

With the base frozen, each head is trained ``seeds`` times on cached latents, each
repetition with a seed of its own derived from the run's seed, and reported as mean
and standard deviation. Fine-tuning the whole network end to end (base unfrozen) is
the other reading of the paper's protocol; it is run for VI-Net and the comparison
heads alike, with one budget, and reported beside the frozen numbers. The paper's
head size (``budget_head_params``) gets a VI-Net of its own, with rivals of its size.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from pathlib import Path

import torch
from torch import nn

from vinet_utils.network.models import count_params, truncate
from vinet_utils.workflow.params import rival_of
from vinet_utils.common.results import checksum
from vinet_utils.common.seeds import derive_seed
from vinet_utils.network.train import (TrainConfig, evaluate, image_batches, init_key, train_classifier,
                    train_seeds)
from vinet_utils.method.vinet import VINet, poly_head, tag_of, vinet_heads


#: The heads that are also fine-tuned end to end (base unfrozen) when asked: VI-Net and
#: the three comparison heads without polynomials.
END_TO_END_HEADS = ("VI-Net", "linear (flatten)", "projection + linear", "MLP")


#: How the base's BatchNorm statistics behave end to end (``unfreeze_bn_stats``).
BN_STATS = ("update", "frozen")


#: The settings a head trains with: frozen, then end to end.
TRAINING_KNOBS = ("finetune_lr", "train_projection", "unfreeze_lr", "unfreeze_base_lr_scale",
                  "unfreeze_bn_stats")


def head_settings(head: str, own: dict, rival_settings: dict | None) -> dict:
    """The settings ``head`` trains with: VI-Net ``own`` values of :data:`TRAINING_KNOBS`
    (the profile's), every other head its ``rival_settings`` entry (:func:`rival_of`)
    over them. Notebook 05 and the budget curve both ask here."""
    out = {k: own[k] for k in TRAINING_KNOBS if k in own}
    if head != "VI-Net":
        out.update((rival_settings or {}).get(rival_of(head), {}))
    return out


def finetune_end_to_end(model, cf, head, ds, cfg: TrainConfig, run_dir, tag: str,
                        device="cpu", progress: bool = True, base_lr_scale: float = 1.0,
                        bn_stats: str = "update", validate: bool = False) -> dict:
    """Fine-tune a copy of the truncated base together with a copy of the trained
    ``head`` on augmented images, every parameter trainable. The base trains at
    ``base_lr_scale`` times the head's learning rate; with ``bn_stats="frozen"`` its
    BatchNorm statistics stay as trained. Resumable, and keyed by the head's trained
    weights and these choices (``<run_dir>/heads/<tag>-e2e.ckpt``); returns the
    training record, evaluated on ``ds``'s test split; with ``validate``, its metrics
    also hold ``val_acc``, the accuracy on the images the run held out of all training
    (``ds.holdout_x``)."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"unfreeze_bn_stats must be one of {', '.join(BN_STATS)} (got {bn_stats!r})")
    base = copy.deepcopy(truncate(model, cf.layer))
    base.lr_scale = base_lr_scale
    net = VINet(base, copy.deepcopy(head), cf.pool, freeze_base=False,
                frozen_statistics=bn_stats == "frozen")
    key = {"head": tag, "trained_head": init_key(head), "base": checksum(base.parameters()),
           "data": data_key(ds)}
    if (base_lr_scale, bn_stats) != (1.0, "update"):  # keys of earlier runs stay valid
        key.update(base_lr_scale=base_lr_scale, bn_stats=bn_stats)
    rec = train_classifier(net, ds, cfg, Path(run_dir) / "heads", name=f"{tag}-e2e",
                           device=device, progress=progress, key=key, strict=False,
                           names=("unfreeze_lr", "finetune_batch_size"))
    if validate:
        rec["metrics"]["val_acc"] = holdout_acc(net, ds, device)
    return rec


def train_whole(model, ds, cfg: TrainConfig, run_dir, name: str, device="cpu",
                progress: bool = True) -> dict:
    """Train a copy of the whole network ``model`` on by ``cfg`` on augmented images, every
    parameter trainable: the control beside end-to-end heads, a full network given as
    many more epochs as they had. Resumable, and keyed by the network's parameters and
    buffers (``<run_dir>/heads/<name>-e2e.ckpt``); its metrics hold ``val_acc`` on the
    held-out images as well as ``test_acc``."""
    net = copy.deepcopy(model).requires_grad_(True)
    key = {"head": "full network", "base": checksum(model.state_dict().values()),
           "data": data_key(ds)}
    rec = train_classifier(net, ds, cfg, Path(run_dir) / "heads", name=f"{name}-e2e",
                           device=device, progress=progress, key=key, strict=False,
                           names=("lr", "finetune_batch_size"))
    rec["metrics"]["val_acc"] = holdout_acc(net, ds, device)
    return rec


def data_key(ds) -> dict:
    """What an end-to-end training's cache key holds of its data: the data's fingerprint,
    the split sizes and their label sums."""
    return {"fingerprint": ds.fingerprint, "n_train": len(ds.train_y),
            "train_label_sum": int(ds.train_y.sum()), "n_test": len(ds.test_y),
            "test_label_sum": int(ds.test_y.sum())}


def holdout_acc(net, ds, device="cpu") -> float:
    """``net``'s accuracy on the images the run held out of all training
    (``ds.holdout_x``): the validation score of an end-to-end training."""
    if ds.holdout_x is None:
        raise ValueError("a validation score needs a run that held images out (holdout_frac > 0)")
    return evaluate(net, image_batches(ds.holdout_x, ds.holdout_y, 1024, ds.mean, ds.std,
                                       device), device)["acc"]


def budget_keep_per_class(cf, head_params: int, num_classes: int,
                          train_projection: bool | str = False) -> int:
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
                   train_projection: bool | str = False, modes: dict | None = None) -> dict:
    """The comparison heads at the same cut and on the same latents as a VI-Net head
    that keeps the generators ``kept`` (per class) and has ``head_params`` parameters:
    a linear head, random monomials of the VI-Net's width and degrees, an MLP of about
    the same size, and the projection -> tanh -> linear head without polynomials.
    Each value makes a fresh head; the projection is in ``modes[name]`` where given,
    otherwise in ``train_projection``."""
    from vinet_utils.method.heads import LinearHead, MLPHead, ProjectionHead, RandomMonomialHead

    d = cf.latents["train"].shape[1]
    degrees = [int(x) for m, k in zip(cf.models, kept) for x in m.degrees_[k]]

    modes = modes or {}

    def pre(name):
        return copy.deepcopy(cf.preprocess).trainable(modes.get(name, train_projection))

    return {f"linear ({cf.pool})": lambda: LinearHead(d, num_classes),
            "random monomials": lambda: RandomMonomialHead(pre("random monomials"), degrees,
                                                           num_classes,
                                                           int(torch.randint(2**31, ()))),
            "MLP": lambda: MLPHead(d, num_classes, head_params),
            "projection + linear": lambda: ProjectionHead(pre("projection + linear"),
                                                          num_classes)}


def evaluate_ablations(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       seeds: int = 1, seed: int = 0, train_projection: bool | str = False,
                       cf_pooled=None, budget_head_params: int | None = None,
                       end_to_end: TrainConfig | None = None, end_to_end_seeds: int = 1,
                       end_to_end_base_lr_scale: float = 1.0, end_to_end_bn_stats: str = "update",
                       rival_settings: dict | None = None, device="cpu",
                       progress: bool = True) -> list[dict]:
    """Every head at one cut, one row per head and protocol (resumable throughout).

    With the base frozen (protocol "frozen"), each head is trained ``seeds`` times on
    cached latents: VI-Net (the same checkpoints as notebook 04), the comparison heads
    of :func:`ablation_heads`, and:

    - with ``budget_head_params``, a VI-Net keeping as many generators as that budget
      of parameters beyond the projection buys (the paper's head size), with random
      monomials and an MLP of its size;
    - with ``cf_pooled`` (the same cut fitted on globally pooled latents), a linear
      probe and a VI-Net on the pooled map, to show what the spatial layout is worth.

    ``rival_settings`` (``{rival: {"finetune_lr": ..., "train_projection": ...,
    "unfreeze_lr": ..., ...}}``, see :data:`vinet_utils.workflow.params.RIVAL_SETTINGS`) trains
    each named comparison head at the cut, and its paper-budget twin, as the protocol
    search chose for it, end to end too; the others train as VI-Net does (``cfg``,
    ``train_projection``, ``end_to_end``).

    With ``end_to_end``, the first ``end_to_end_seeds`` trained heads of each of
    :data:`END_TO_END_HEADS` are then fine-tuned together with the truncated base on
    augmented images, every head with the same budget (protocol "end to end"), the base
    at ``end_to_end_base_lr_scale`` times the learning rate and its BatchNorm
    statistics as ``end_to_end_bn_stats`` says (:func:`finetune_end_to_end`)."""
    C = ds.num_classes
    base = count_params(truncate(model, cf.layer))
    rows, trained = [], {}
    settings = rival_settings or {}
    for c, name, make, tag in _frozen_jobs(cf, keep_per_class, C, train_projection,
                                           budget_head_params, cf_pooled, settings):
        lr = settings.get(rival_of(name), {}).get("finetune_lr") if c is cf else None
        res = train_seeds(make, c.latents, cfg if lr is None else dataclasses.replace(cfg, lr=lr),
                          run_dir, tag, seeds, seed, device, progress)
        trained[name] = (tag, res["heads"])
        rows.append(_row(cf, name, c.pool, "frozen", base, res["params"], res["acc_per_seed"],
                         res["wall_time_s"], generators=getattr(res["heads"][0], "poly", None),
                         saturated=saturation(res["heads"][0], c.latents["test"])))
        if hasattr(res["heads"][0], "unit_cube"):  # runs before it took |.| on (-1, 1)
            rows[-1]["monomial_variables"] = "(u + 1) / 2, distinct draws"
    if end_to_end is not None:
        for name in END_TO_END_HEADS:
            tag, heads = trained[name]
            own = head_settings(name, {"unfreeze_lr": end_to_end.lr,
                                       "unfreeze_base_lr_scale": end_to_end_base_lr_scale,
                                       "unfreeze_bn_stats": end_to_end_bn_stats}, settings)
            lr = own["unfreeze_lr"]
            accs, t = [], 0.0
            for r, head in enumerate(heads[:end_to_end_seeds]):
                rec = finetune_end_to_end(
                    model, cf, head, ds, dataclasses.replace(
                        end_to_end, lr=lr, seed=derive_seed(seed, tag, "end to end", r)),
                    run_dir, f"{tag}-s{r}", device, progress,
                    own["unfreeze_base_lr_scale"], own["unfreeze_bn_stats"])
                accs.append(rec["metrics"]["test_acc"])
                t += rec["wall_time_s"]
            rows.append(_row(cf, name, cf.pool, "end to end", base, heads[0].count_params(),
                             accs, t))
    return rows


def _frozen_jobs(cf, keep_per_class: int, C: int, train_projection: bool,
                 budget_head_params: int | None, cf_pooled, settings: dict) -> list[tuple]:
    """``(fit, head name, make, tag)`` of every head trained with the base frozen."""
    from vinet_utils.method.heads import LinearHead

    modes = {r: s["train_projection"] for r, s in settings.items() if "train_projection" in s}
    make, template, pr = vinet_heads(cf, keep_per_class, C, train_projection)
    jobs = [(cf, "VI-Net", make, tag_of(cf, f"vinet-k{keep_per_class}"))]
    jobs += [(cf, name, make, tag_of(cf, name)) for name, make in ablation_heads(
        cf, pr.kept, template.count_params(), C, train_projection, modes).items()]
    if budget_head_params is not None:
        k = budget_keep_per_class(cf, budget_head_params, C, train_projection)
        make_big, big, big_pr = vinet_heads(cf, k, C, train_projection)
        rivals = ablation_heads(cf, big_pr.kept, big.count_params(), C, train_projection, modes)
        jobs += [(cf, "VI-Net (paper budget)", make_big, tag_of(cf, f"vinet-k{k}")),
                 (cf, "random monomials (paper budget)", rivals["random monomials"],
                  tag_of(cf, f"random monomials k{k}")),
                 (cf, "MLP (paper budget)", rivals["MLP"], tag_of(cf, f"MLP p{big.count_params()}"))]
    if cf_pooled is not None:
        make_pooled, _, _ = vinet_heads(cf_pooled, keep_per_class, C, train_projection)
        dp = cf_pooled.latents["train"].shape[1]
        jobs += [(cf_pooled, f"linear ({cf_pooled.pool})", lambda: LinearHead(dp, C),
                  tag_of(cf_pooled, f"linear ({cf_pooled.pool})")),
                 (cf_pooled, f"VI-Net ({cf_pooled.pool})", make_pooled,
                  tag_of(cf_pooled, f"VI-Net ({cf_pooled.pool})"))]
    return jobs


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
