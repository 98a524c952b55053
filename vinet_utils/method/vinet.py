"""VI-Net: a truncated base followed by a head on its latents (docs/method.md §6).

``VINet(base, head, pool)`` runs base -> pool (by default flatten the whole map) ->
head. With a :class:`~vinet_utils.method.heads.PolyHead` this is the paper's VI-Net; with the
comparison heads of :mod:`vinet_utils.experiments.ablations` it is the comparison network at the
same cut. Here VI-Net is pruned and built from a cut's fits (:func:`vinet_heads`),
fine-tuned with the base frozen (:func:`build_and_finetune`, notebook 04) and
rebuilt from its checkpoint (:func:`rebuild`, notebook 06).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from vinet_utils.method.latents import Pool
from vinet_utils.network.models import count_params, truncate
from vinet_utils.network.train import TrainConfig, train_seeds


class VINet(nn.Module):
    def __init__(self, base: nn.Module, head: nn.Module, pool: str = "flatten",
                 freeze_base: bool = True, frozen_statistics: bool = False):
        super().__init__()
        self.base, self.pool, self.head = base, Pool(pool), head
        self.frozen_statistics = frozen_statistics  # base BatchNorm statistics kept as trained
        self.freeze_base(freeze_base)

    def freeze_base(self, frozen: bool = True) -> None:
        for p in self.base.parameters():
            p.requires_grad_(not frozen)
        self.base_frozen = frozen

    def train(self, mode: bool = True):
        super().train(mode)
        if self.base_frozen or self.frozen_statistics:
            self.base.eval()  # frozen means frozen BatchNorm statistics too
        return self

    def forward(self, x):
        return self.tail(self.base(x))

    def tail(self, m):
        """The head on the base's activation map ``m``: pool, then the head in float32."""
        z = self.pool(m)
        with torch.autocast(z.device.type, enabled=False):  # the head in float32
            return self.head(z.float())

    def param_counts(self) -> dict:
        """Base = the truncated network; Poly = the head; Total = Base + Poly."""
        base, head = count_params(self.base), self.head.count_params()
        return {"base": base, "poly": head, "total": base + head}


def poly_head(cf, keep_per_class: int, num_classes: int, train_projection: bool | str = False):
    """Prune the per-class generators of a :class:`~vinet_utils.method.ideals.CutFit` and build
    the VI-Net head on the kept ones. Returns ``(head, prune_result)``."""
    from vinet_utils.method.heads import PolyHead
    from vinet_utils.method.polynomial import PolynomialLayer
    from vinet_utils.method.pruning import prune

    pr = prune(cf.models, cf.fit_points, keep_per_class)
    poly = PolynomialLayer.from_oavi(cf.models, pr.kept).float()
    pre = copy.deepcopy(cf.preprocess).trainable(train_projection)
    return PolyHead(pre, poly, num_classes), pr


def vinet_heads(cf, keep_per_class: int, num_classes: int, train_projection: bool | str = False):
    """Prune and build, once: ``(make, template, prune_result)``, where ``make()``
    returns a fresh VI-Net head for one training (the fitted projection and
    polynomial layer as fitted, the layers after them initialised from the current
    torch seed). Notebook 04, the ablations and the sweep all build VI-Net here."""
    template, pr = poly_head(cf, keep_per_class, num_classes, train_projection)
    return (lambda: _fresh(template)), template, pr


def safe_name(name: str) -> str:
    """A head's name as it appears in file names and seed tags."""
    return name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "and")


def tag_of(cf, name: str) -> str:
    """The tag of the head ``name`` at ``cf``'s cut and pool (checkpoints, seeds)."""
    return f"{cf.layer}-{cf.pool}-{safe_name(name)}"


def build_and_finetune(model, cf, ds, run_dir, *, keep_per_class: int, cfg: TrainConfig,
                       seeds: int = 1, seed: int = 0, train_projection: bool | str = False,
                       device="cpu", progress: bool = True) -> dict:
    """Prune and build the VI-Net at one cut and fine-tune its head with the base frozen
    ``seeds`` times (the paper's protocol: the table's accuracy is their mean).
    End-to-end fine-tuning is :func:`evaluate_ablations`' business, for every head alike.

    Returns the results row, the fine-tuning histories and the pruning scores."""
    make, template, pr = vinet_heads(cf, keep_per_class, ds.num_classes, train_projection)
    heads = train_seeds(make, cf.latents, cfg, run_dir, tag_of(cf, f"vinet-k{keep_per_class}"),
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


def rebuild(model, cf, ds, run_dir, *, keep_per_class: int, train_projection: bool | str = False,
            device="cpu") -> VINet:
    """The fine-tuned VI-Net of notebook 04 at ``cf``'s cut (its first seed), rebuilt
    from the cached fits and its finished checkpoint."""
    head, _ = poly_head(cf, keep_per_class, ds.num_classes, train_projection)
    net = VINet(truncate(model, cf.layer), head, cf.pool)
    ckpt = Path(run_dir) / "heads" / f"{tag_of(cf, f'vinet-k{keep_per_class}')}-s0.ckpt"
    net.head.load_state_dict(torch.load(ckpt, map_location=device, weights_only=False)["model"])
    return net.eval()
