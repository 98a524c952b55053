"""What a protocol search chose, read from its results record (``protocol.json``):
the best trial of a study, the settings a profile adopts. The
search (:mod:`vinet_utils.experiments.protocol`), the profiles and the pages all read
a search's choices here."""

from __future__ import annotations

from vinet_utils.workflow.params import rival_of


def best(trials: list[dict]) -> dict:
    """The trial with the best objective (ties: the earlier trial)."""
    return max(trials, key=lambda t: (t["objective"], -t.get("round", 0), -t["number"]))


def chosen_settings(result: dict) -> dict:
    """What a profile adopts from a protocol search's results ``result``: VI-Net's
    chosen values as the profile's own (``finetune_lr``, ``train_projection``, ``psi``
    and, searched end to end, ``unfreeze_lr``, ``unfreeze_base_lr_scale``,
    ``unfreeze_bn_stats``), and every other head's as its ``rival_settings`` entry
    (:data:`vinet_utils.workflow.params.RIVAL_SETTINGS`), rounded to 3 significant digits."""
    out = {}
    for head in result["frozen"]:
        vals = dict(best(result["frozen"][head])["values"])
        if head in result.get("end_to_end", {}):
            vals.update(best(result["end_to_end"][head])["values"])
        vals = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in vals.items()}
        if head == "VI-Net":
            out.update(vals)
        else:
            out.setdefault("rival_settings", {})[rival_of(head)] = vals
    return out

