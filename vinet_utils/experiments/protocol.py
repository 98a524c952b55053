"""How each head is trained, chosen on a validation split with the same number of
trials for every head: one Optuna study per head.

    python -m vinet_utils.experiments.protocol --profile cpu --variants tiny small --trials 8 \\
        --end-to-end tiny --e2e-trials 4 [--storage sqlite:///shared.db]

A verdict that ranks heads is only as good as the training of the worst-trained
head. This search gives every compared head (VI-Net, the linear head on the flattened
map, projection + linear, an MLP of VI-Net's size, random monomials) the same number
of trials, each the mean validation accuracy of ``--seeds`` trainings (at least 2)
over the searched cuts. Each head searches its own knobs (:data:`SPACES`): the
learning rate over four decades for all; the projection mode for the heads that
start with the projection; and, for VI-Net, its vanishing tolerance ``psi``, so the
one structural value it is tuned by counts against the same budget as everyone's.

With ``--end-to-end`` cuts, each head of notebook 05's end-to-end protocol then
starts from its best frozen trial's trained heads and is fine-tuned with the base
unfrozen, in a study of its own over :data:`E2E_SPACE` (the learning rate, the base's
share of it, whether the base's BatchNorm statistics move), again the same number of
trials for every head.

Where the run held images out of all training (``holdout_frac``; the ``cpu``
profile does), they are the validation split: the base never saw them. Otherwise a
stratified split is carved out of the training images and the results file says
that it overlaps the base's training. The test split is never read.

A chosen value in the outer tenth of its (log) range is flagged (:func:`edge_flags`):
the range stopped short, and the search must be widened and run again.

The studies live in ``--storage`` (default: ``<run>/protocol.db``, SQLite), so an
interrupted search resumes, a finished one replays, and several machines pointed at
one database share the trials. With one machine, the same seed gives the same choices.

Writes ``<run>/protocol.json`` (every trial per cut, each head's choice, flags, the
command) and ``<run>/protocol.png``.
"""

from __future__ import annotations

import shlex
import statistics
import sys
from pathlib import Path

from vinet_utils.workflow import params as P
from vinet_utils.common.results import read_json
from vinet_utils.workflow.searches import best, chosen_settings
from vinet_utils.experiments.studies import (EDGE, equal_rounds, open_e2e_study, open_study,
                                             optimize, record_trials, round_names,
                                             ranges_drawn, search_widening, suggest, trial_key,
                                             trial_label)
from vinet_utils.method.polynomial import NoGenerators
from vinet_utils.network.train import TrainingDiverged

#: Heads that start with the projection, and so have a ``train_projection`` mode.
PROJECTED = ("VI-Net", "projection + linear", "random monomials")
#: Heads on the raw latents.
PLAIN = ("linear (flatten)", "MLP")
HEADS = PROJECTED + PLAIN
#: The projection modes (:data:`vinet_utils.method.latents.PROJECTION_MODES`).
MODES = (False, True, "slow", "normalized")
_LR = ("log", 1e-4, 1.0)
#: Each head's knobs with the base frozen: ``("log", low, high)`` or ``("cat", choices)``.
SPACES = {
    "VI-Net": {"finetune_lr": _LR, "train_projection": ("cat", MODES), "psi": ("log", 0.01, 0.5)},
    "projection + linear": {"finetune_lr": _LR, "train_projection": ("cat", MODES)},
    "random monomials": {"finetune_lr": _LR, "train_projection": ("cat", MODES)},
    "linear (flatten)": {"finetune_lr": _LR},
    "MLP": {"finetune_lr": _LR},
}
#: Every end-to-end head's knobs (the base unfrozen).
E2E_SPACE = {"unfreeze_lr": ("log", 1e-4, 1.0), "unfreeze_base_lr_scale": ("log", 0.01, 10.0),
             "unfreeze_bn_stats": ("cat", ("update", "frozen"))}


def head_makers(cf, values: dict, num_classes: int, mode) -> dict:
    """Every compared head at ``cf``'s cut, its projection (where it has one) in
    ``mode``: name -> a function that makes a fresh head."""
    from vinet_utils.experiments.ablations import ablation_heads
    from vinet_utils.method.vinet import vinet_heads

    make, template, pr = vinet_heads(cf, values["keep_per_class"], num_classes, mode)
    return {"VI-Net": make, **ablation_heads(cf, pr.kept, template.count_params(),
                                             num_classes, mode)}


def made_on(model, ds) -> dict:
    """What a search's studies are stored with: the base (every parameter and buffer)
    and the data, so that a retrained base or other data never replays them."""
    from vinet_utils.common.results import checksum
    return {"base": checksum(model.state_dict().values()), "data": ds.fingerprint}


class Searcher:
    """The searches of one finished run: its validation latents per cut, the fits, the
    Optuna storage, and the trained heads of each trial (for the end-to-end studies)."""

    def __init__(self, S, variants, seeds: int, storage: str, progress: bool = False):
        self.S, self.variants, self.seeds, self.storage = S, list(variants), seeds, storage
        self.progress = progress
        self.lat = {v: S.latents(v) for v in self.variants}
        self.cache = S.run_dir / "protocol"
        self.trained = {}  # (head, its values) -> {cut: (fit, [trained heads])}
        self.made_on = made_on(S.model, S.ds)

    def name(self, *parts) -> str:
        return "/".join([self.S.run_dir.name, *map(str, parts)])

    def fit(self, variant: str, values: dict):
        from vinet_utils.experiments.sweep import fit_cut
        return fit_cut(self.lat[variant], self.S.values["arch"], variant, values,
                    self.S.ds.num_classes, self.S.run_dir / "sweep", self.S.seed)

    def failed(self, reason: str = "diverged") -> dict:
        """A trial that trained no head (its training diverged, or no generator is left
        to build VI-Net from): it scores chance accuracy, and says why."""
        return {"val_acc": 100.0 / self.S.ds.num_classes, "val_acc_per_seed": None,
                "saturation": None, reason: True}

    def train_frozen(self, head: str, values: dict, variant: str):
        """``head`` trained ``seeds`` times with the base frozen at ``variant``, with the
        trial's ``values`` over the profile's: ``(fit, train_seeds result)``, kept for
        the end-to-end studies (checkpointed, so a resumed search reads them back)."""
        from vinet_utils.experiments.sweep import head_config
        from vinet_utils.network.train import train_seeds

        vals = {**self.S.values, **values}
        cf = self.fit(variant, vals)
        make = head_makers(cf, vals, self.S.ds.num_classes, vals["train_projection"])[head]
        res = train_seeds(make, cf.latents, head_config(vals, self.S.seed), self.cache,
                          _tag(cf, head, values), self.seeds, self.S.seed, progress=self.progress)
        self.trained.setdefault((head, trial_key(values)), {})[variant] = (cf, res["heads"])
        return cf, res

    def frozen(self, head: str, n_trials: int, space: dict | None = None,
               round_: int = 0) -> list[dict]:
        """``head``'s frozen-base study: ``n_trials`` trials, each scored by the mean over
        cuts of the mean validation accuracy of ``seeds`` trainings."""
        from vinet_utils.experiments.ablations import saturation

        space, rows = space or SPACES[head], {}

        def objective(trial):
            suggest(trial, space)
            per_cut = {}
            for v in self.variants:
                try:
                    cf, res = self.train_frozen(head, trial.params, v)
                except NoGenerators:  # psi so small that nothing vanishes: no VI-Net
                    per_cut[v] = self.failed("no_generators")
                    continue
                except TrainingDiverged:
                    per_cut[v] = self.failed()
                    continue
                per_cut[v] = {"val_acc": res["acc"], "val_acc_per_seed": res["acc_per_seed"],
                              "saturation": saturation(res["heads"][0], cf.latents["test"]),
                              "params": res["params"]}
            trial.set_user_attr("per_cut", per_cut)
            rows[trial.number] = per_cut
            score = statistics.fmean(r["val_acc"] for r in per_cut.values())
            print(f"  {head} #{trial.number} [{trial_label(trial.params)}]: {score:.2f}", flush=True)
            return score

        study = open_study(self.storage, self.name("frozen", head, *round_names(round_)),
                           _seed(self.S.seed, "frozen", head, *round_names(round_)),
                           startup=max(2, n_trials // 2), made_on=self.made_on)
        optimize(study, objective, n_trials)
        return record_trials(study, rows)

    def end_to_end(self, head: str, start: dict, cuts, n_trials: int, space: dict | None = None,
                   round_: int = 0) -> list[dict]:
        """``head``'s end-to-end study at ``cuts``, every trial starting from the trained
        heads of its best frozen trial ``start``: base unfrozen, on the images outside
        the validation split, scored on the validation images."""
        from vinet_utils.experiments.ablations import finetune_end_to_end
        from vinet_utils.network.train import TrainConfig

        ds_split, rows = self.S.image_split(), {}
        vals0 = {**self.S.values, **start["values"]}

        def objective(trial):
            knobs = suggest(trial, space or E2E_SPACE)
            per_cut = {}
            for v in cuts:
                cf, heads = self._start_heads(head, start, v)
                accs = []
                for r, trained in enumerate(heads):
                    cfg = TrainConfig(epochs=vals0["unfreeze_epochs"], lr=knobs["unfreeze_lr"],
                                      batch_size=vals0["finetune_batch_size"],
                                      seed=_seed(self.S.seed, "e2e", head, r))
                    tag = _tag(cf, head, {**start["values"], **knobs}) + f"-s{r}"
                    try:
                        rec = finetune_end_to_end(
                            self.S.model, cf, trained, ds_split, cfg, self.cache, tag,
                            progress=self.progress, base_lr_scale=knobs["unfreeze_base_lr_scale"],
                            bn_stats=knobs["unfreeze_bn_stats"])
                    except TrainingDiverged:
                        accs = None
                        break
                    accs.append(rec["metrics"]["test_acc"])  # the validation images
                frozen = start["per_cut"][v]["val_acc"]
                per_cut[v] = {**(self.failed() if accs is None else {
                    "val_acc": statistics.fmean(accs), "val_acc_per_seed": accs}),
                    "frozen_val_acc": frozen}
                per_cut[v]["gain"] = per_cut[v]["val_acc"] - frozen
            trial.set_user_attr("per_cut", per_cut)
            rows[trial.number] = per_cut
            score = statistics.fmean(r["val_acc"] for r in per_cut.values())
            print(f"  {head} end to end #{trial.number} [{trial_label(knobs)}]: {score:.2f}",
                  flush=True)
            return score

        study = open_e2e_study(self.storage, self.name("end to end", head, *cuts, *round_names(round_)),
                               _seed(self.S.seed, "e2e", head, *round_names(round_)),
                               max(2, n_trials // 2), start["label"], self.made_on)
        optimize(study, objective, n_trials)
        return record_trials(study, rows)

    def _start_heads(self, head: str, start: dict, variant: str):
        """The fit and the trained heads of ``head``'s frozen trial ``start`` at
        ``variant`` (retrained from their checkpoints when this process did not train
        them: a resumed search)."""
        got = self.trained.get((head, trial_key(start["values"])), {}).get(variant)
        if got is not None:
            return got
        cf, res = self.train_frozen(head, start["values"], variant)
        return cf, res["heads"]


def _tag(cf, head: str, values: dict) -> str:
    """A trial's checkpoint tag (and seed name): the cut, the head, a hash of its values."""
    import hashlib
    import json

    from vinet_utils.method.vinet import safe_name
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    return f"{cf.layer}-search-{safe_name(head)}-{digest}"


def _keep_recorded(path: Path, found: dict, heads, trials: int, seeds: int, variants) -> list:
    """Fill ``found`` with the frozen searches of the heads not searched now (not in
    ``heads``) as the results file at ``path`` recorded them, so that a search of some
    heads (``--heads``) updates their entries and keeps the others'. An earlier search
    with other trials per head, trainings per trial or cuts is not comparable: it
    raises instead. Returns the heads kept."""
    rest = [h for h in HEADS if h not in heads]
    if not rest or not path.exists():
        return []
    old = read_json(path)["metrics"]
    same = (old.get("trials_per_head") == trials and old.get("trainings_per_trial") == seeds
            and old.get("variants") == list(variants))
    if not same:
        raise ValueError(
            f"--heads {' '.join(heads)} keeps the other heads' searches from {P.shown(path)}, "
            f"which ran {old.get('trials_per_head')} trials of {old.get('trainings_per_trial')} "
            f"trainings on {old.get('variants')}; this search runs {trials} of {seeds} on "
            f"{list(variants)}: search every head, or match them")
    for h in rest:
        if h in old.get("frozen", {}):
            found[h] = {"trials": old["frozen"][h], "space": old["spaces"][h],
                        "flags": old.get("flags", {}).get(h, []),
                        "earlier": old.get("widened", {}).get(h, [])}
    return [h for h in rest if h in found]


def _seed(seed: int, *names) -> int:
    from vinet_utils.common.seeds import derive_seed
    return derive_seed(seed, "protocol", *names)


def run(profile: str, dataset: str | None = None, arch: str | None = None,
        variants=("tiny", "small"), seeds: int = 2, val_frac: float = 0.1, results_dir=None,
        command: str = "", end_to_end=(), overrides: dict | None = None, trials: int = 8,
        e2e_trials: int = 4, storage: str | None = None, heads=HEADS,
        e2e_heads=None) -> Path:
    """The search on ``variants`` of a finished run, and end to end on the cuts
    ``end_to_end`` (among ``variants``); ``overrides`` replace profile values (as
    ``--set`` does for the pipeline). Returns the results file."""
    from vinet_utils.report import figures as plots
    from vinet_utils.experiments.ablations import END_TO_END_HEADS
    from vinet_utils.experiments.sweep import start_search

    def check(values):
        if not set(end_to_end) <= set(variants):
            raise ValueError(f"--end-to-end must be drawn from --variants {' '.join(variants)} "
                             f"(got {' '.join(end_to_end)})")
        missing = [k for k in ("unfreeze_epochs",) if k not in values]
        if end_to_end and missing:
            raise ValueError(f"--end-to-end needs the end-to-end budget, and params/{profile}.yaml "
                             f"sets no {' or '.join(missing)}")
        if seeds < 2:
            raise ValueError(f"--seeds must be at least 2: every trial is the mean of several "
                             f"trainings (got {seeds})")
        if trials < 2 or (end_to_end and e2e_trials < 2):
            raise ValueError(f"--trials and --e2e-trials must be at least 2 (got {trials}, "
                             f"{e2e_trials})")
        for h in heads:
            P.choice("--heads", h, HEADS)
        for h in e2e_heads or ():
            P.choice("--e2e-heads", h, END_TO_END_HEADS)
        recorded = P.run_path(results_dir, profile, values["dataset"], values["arch"]) / "protocol.json"
        _keep_recorded(recorded, {}, heads, trials, seeds, variants)  # one it cannot keep stops here

    S = start_search("protocol", profile, dataset, arch, variants, seeds, val_frac, results_dir,
                     overrides, check)
    storage = storage or f"sqlite:///{S.run_dir / 'protocol.db'}"
    search = Searcher(S, variants, seeds, storage)
    found, found_e2e = {}, {}
    kept = _keep_recorded(S.run_dir / "protocol.json", found, heads, trials, seeds, variants)
    for head in heads:
        print(f"{head}: {trials} trials with the base frozen", flush=True)
        found[head] = search_widening(
            lambda space, r, h=head: search.frozen(h, trials, space, r), SPACES[head], trials)
    equal_rounds(found, {h: (lambda space, r, h=h: search.frozen(h, trials, space, r))
                         for h in heads}, SPACES, trials)
    found = {h: found[h] for h in HEADS if h in found}  # kept or searched, in one order
    frozen = {h: f["trials"] for h, f in found.items()}
    e2e_study = {h: (lambda space, r, h=h: search.end_to_end(h, best(frozen[h]), list(end_to_end),
                                                            e2e_trials, space, r))
                 for h in END_TO_END_HEADS if h in heads and end_to_end
                 and (e2e_heads is None or h in e2e_heads)}
    for head, study in e2e_study.items():
        print(f"{head}: {e2e_trials} trials end to end at {' '.join(end_to_end)}", flush=True)
        found_e2e[head] = search_widening(study, E2E_SPACE, e2e_trials)
    equal_rounds(found_e2e, e2e_study, {h: E2E_SPACE for h in e2e_study}, e2e_trials,
                 "end-to-end ")
    e2e = {h: f["trials"] for h, f in found_e2e.items()}
    flags = {h: f["flags"] for h, f in found.items()}
    flags_e2e = {h: f["flags"] for h, f in found_e2e.items()}
    lat = search.lat[variants[0]]
    path = S.stage.write(S.run_dir / "protocol.json", {
        "command": command, "validation": S.validation_record(lat),
        "storage": storage if storage != f"sqlite:///{S.run_dir / 'protocol.db'}" else "protocol.db",
        "trials_per_head": trials, "e2e_trials_per_head": e2e_trials if e2e else 0,
        "e2e_heads": list(e2e),
        "trainings_per_trial": seeds, "variants": list(variants), "end_to_end_cuts": list(end_to_end),
        "kept_from_earlier_run": kept,
        "spaces": {h: f["space"] for h, f in found.items()},
        "e2e_spaces": {h: f["space"] for h, f in found_e2e.items()}, "edge": EDGE,
        "ranges_drawn": ranges_drawn(storage),
        "widened": {h: f["earlier"] for h, f in found.items() if f["earlier"]},
        "widened_end_to_end": {h: f["earlier"] for h, f in found_e2e.items() if f["earlier"]},
        "frozen": frozen, "end_to_end": e2e,
        "best": {h: best(t)["label"] for h, t in frozen.items()},
        "best_end_to_end": {h: best(t)["label"] for h, t in e2e.items()},
        "flags": {h: f for h, f in flags.items() if f},
        "flags_end_to_end": {h: f for h, f in flags_e2e.items() if f},
        "baseline_test_acc_not_used": S.baseline["metrics"]["test_acc"]})
    rec = read_json(path)
    plots.protocol(rec, path=S.run_dir / "protocol.png")
    for h, t in frozen.items():
        b = best(t)
        print(f"{h}: {b['label']} ({b['objective']:.2f})" + (f"  FLAGGED: {flags[h]}" if flags[h] else ""))
    for h, t in e2e.items():
        b = best(t)
        print(f"{h} end to end: {b['label']} ({b['objective']:.2f})"
              + (f"  FLAGGED: {flags_e2e[h]}" if flags_e2e[h] else ""))
    chosen = chosen_settings(rec["metrics"])
    print(f"for params/{profile}.yaml: " + "; ".join(f"{k}: {v}" for k, v in chosen.items()))
    print(f"written: {P.shown(path)}")
    return path


def main(argv=None) -> None:
    from vinet_utils.experiments.sweep import search_arguments

    ap = search_arguments(__doc__.split("\n\n")[0], seeds=2)
    ap.add_argument("--trials", type=int, default=8, help="trials per head, base frozen")
    ap.add_argument("--end-to-end", nargs="*", default=[], metavar="CUT",
                    help="cuts (among --variants) where each head's end-to-end study runs")
    ap.add_argument("--e2e-trials", type=int, default=4, help="trials per head, end to end")
    ap.add_argument("--storage", default=None,
                    help="an Optuna storage URL shared by several machines "
                         "(default: sqlite in the run folder, protocol.db)")
    ap.add_argument("--heads", nargs="+", default=list(HEADS),
                    help=f"a subset of {', '.join(HEADS)}; the others keep their searches as the "
                         f"run's protocol.json recorded them")
    ap.add_argument("--e2e-heads", nargs="+", default=None,
                    help="the heads searched end to end (default: every head that goes end to end)")
    a = ap.parse_args(argv)
    cmd = "python -m vinet_utils.experiments.protocol " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    try:
        run(a.profile, a.dataset, a.arch, a.variants, a.seeds, a.val_frac, a.results_dir,
            cmd, a.end_to_end, trials=a.trials, e2e_trials=a.e2e_trials, storage=a.storage,
            heads=a.heads, e2e_heads=a.e2e_heads)
    except ValueError as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
