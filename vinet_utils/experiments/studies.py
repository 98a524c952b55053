"""The Optuna plumbing of the searches: one seeded study per head, its trials
recorded with their per-cut scores, a range widened where the choice sits at its edge,
and as many rounds for every head (:mod:`vinet_utils.experiments.protocol`)."""

from __future__ import annotations

import hashlib
import json
import math

from vinet_utils.workflow.searches import best


def trial_key(values: dict) -> str:
    """A trial's values as one string: two trials with equal values are one trial."""
    return json.dumps(values, sort_keys=True)

#: A chosen value this close to either end of its log range (as a share of it) is flagged.
EDGE = 0.1


def trial_label(trial: dict) -> str:
    """A trial as it is shown and tagged: ``train_projection=slow, finetune_lr=0.1``."""
    return ", ".join(f"{k}={short(v)}" for k, v in trial.items())


def short(v):
    return f"{v:.4g}" if isinstance(v, float) else v


def suggest(trial, space: dict) -> dict:
    """One Optuna ``trial``'s values over ``space``."""
    out = {}
    for name, spec in space.items():
        if spec[0] == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        else:
            out[name] = trial.suggest_categorical(name, list(spec[1]))
    return out


def edge_flags(values: dict, space: dict, edge: float = EDGE) -> list[str]:
    """The knobs of ``values`` that sit in the outer ``edge`` of their log range."""
    flags = []
    for name, spec in space.items():
        if spec[0] == "log" and name in values:
            pos = (math.log(values[name]) - math.log(spec[1])) / (math.log(spec[2]) - math.log(spec[1]))
            if pos < edge or pos > 1 - edge:
                flags.append(name)
    return flags


def open_study(storage: str, name: str, seed: int, startup: int, made_on: dict | None = None):
    """The Optuna study ``name`` in ``storage`` (created or resumed), seeded by
    ``seed``; ``startup`` trials are drawn at random before TPE takes over. A resumed
    study is reseeded by how many trials it holds, so that it draws new values from its
    stored trials: seeded as at its start, the sampler would draw its first points again,
    and the resumed study would repeat trials it already holds.

    ``made_on`` (the base's and the data's fingerprints) is stored with the study: a
    stored study made on another base or other data is left as it is, and the trials go
    to a study named after this base instead, so a retrained base never replays an old
    search. A study stored before bases were recorded takes ``made_on`` as its own."""
    import optuna

    from vinet_utils.common.seeds import derive_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    if made_on is not None:
        mine = json.dumps(made_on, sort_keys=True)
        stored_on = study.user_attrs.get("made_on")
        if stored_on is None:
            study.set_user_attr("made_on", mine)
        elif stored_on != mine:
            tag = hashlib.sha256(mine.encode()).hexdigest()[:8]
            return open_study(storage, f"{name}/base {tag}", seed, startup, made_on)
    stored = len(study.trials)
    if stored:
        study.sampler = optuna.samplers.TPESampler(
            seed=derive_seed(seed, "resumed", stored), n_startup_trials=startup)
    return study


def open_e2e_study(storage: str, name: str, seed: int, startup: int, start: str,
                   made_on: dict | None = None):
    """An end-to-end study, which is only valid for the frozen trial its trials started
    from: ``start``'s label is stored with the study, and a stored study that started
    from another frozen trial is left as it is, the trials going to a study named after
    ``start`` instead (a frozen choice that changes never inherits the trials of the
    old one). A study stored before starts were recorded takes ``start`` as its own.
    ``made_on``: as for :func:`open_study`."""
    study = open_study(storage, name, seed, startup, made_on)
    began = study.user_attrs.get("start")
    if began is None:
        study.set_user_attr("start", start)
    elif began != start:
        study = open_study(storage, f"{name}/from {start}", seed, startup, made_on)
        study.set_user_attr("start", start)
    return study


def finished(study) -> list:
    """``study``'s finished trials, a trial that repeats the values of an earlier one left
    out: it retrains from the same checkpoints, so it is the same trial again (a study
    resumed before :func:`open_study` reseeded resumed studies could draw one)."""
    import optuna

    seen, out = set(), []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and trial_key(t.params) not in seen:
            seen.add(trial_key(t.params))
            out.append(t)
    return out


def optimize(study, objective, n_trials: int) -> None:
    """Run ``study`` until it holds ``n_trials`` finished trials of distinct values
    (resuming a stored one)."""
    for _ in range(3):  # a repeated draw is drawn again, a few times at most
        missing = n_trials - len(finished(study))
        if missing <= 0:
            return
        study.optimize(objective, n_trials=missing)


def record_trials(study, per_cut_of: dict) -> list[dict]:
    """Every finished trial of ``study`` (:func:`finished`): its values, objective and
    per-cut rows."""
    return [{"number": t.number, "values": t.params, "label": trial_label(t.params),
             "objective": t.value, "per_cut": per_cut_of.get(t.number) or t.user_attrs["per_cut"]}
            for t in finished(study)]


def round_names(round_: int) -> tuple:
    """The name part of a widened study (none for the first range: stored studies of
    the first range keep their names)."""
    return (f"widened {round_}",) if round_ else ()


#: How far a range may be widened, per knob.
LIMITS = {"finetune_lr": (1e-6, 10.0), "unfreeze_lr": (1e-6, 10.0), "psi": (1e-4, 1.0),
          "unfreeze_base_lr_scale": (1e-4, 100.0)}
#: How many times a flagged head's range is widened and searched again.
MAX_WIDEN = 2


def widen(space: dict, values: dict, flags: list[str]) -> dict:
    """``space`` with every flagged knob's range carried one decade further past the end
    its chosen value sat at (within :data:`LIMITS`)."""
    out = dict(space)
    for k in flags:
        _, lo, hi = space[k]
        pos = (math.log(values[k]) - math.log(lo)) / (math.log(hi) - math.log(lo))
        low, high = LIMITS.get(k, (0.0, math.inf))
        out[k] = ("log", max(lo / 10, low), hi) if pos < 0.5 else ("log", lo, min(hi * 10, high))
    return out


def search_widening(study, space: dict, n_trials: int, rounds: int = 1) -> dict:
    """Run ``study(space, round) -> trials`` and, while the best trial so far sits at an
    edge of the range and the range can still grow, widen it and search again with as
    many trials; a head whose range needs no widening still gets ``rounds`` rounds in
    its own range, so that every head can be given as many trials. The choice is the
    best trial of every round, judged against the last range: ``{"trials" (every round's, each
    with its "round"), "space", "flags", "earlier": [{"space", "best", "objective", "flags", "trials"}, ...]}``."""
    earlier, every = [], []
    for round_ in range(MAX_WIDEN + 1):
        trials = [{**t, "round": round_} for t in study(space, round_)]
        every += trials
        top = best(every)
        flags = edge_flags(top["values"], space)
        wider = widen(space, top["values"], flags) if flags else space
        if (not flags or wider == space or round_ == MAX_WIDEN) and round_ + 1 >= rounds:
            return {"trials": every, "space": space, "flags": flags, "earlier": earlier}
        if not flags or wider == space:  # as many rounds as the other heads: same range
            earlier.append({"space": space, "best": top["label"], "objective": top["objective"],
                            "flags": flags, "trials": len(trials)})
            continue
        earlier.append({"space": space, "best": top["label"], "objective": top["objective"],
                        "flags": flags, "trials": len(trials)})
        print(f"  flagged {flags}: searching again in {wider}", flush=True)
        space = wider


def equal_rounds(found: dict, studies: dict, spaces: dict, n_trials: int, kind: str = "") -> dict:
    """Give every head of ``studies`` (head -> ``study(space, round)``) as many rounds, so
    as many trials, as the most widened head of ``found`` (head -> its
    :func:`search_widening` result; heads kept from an earlier search count too), and
    again until no head is behind: a head searched again to catch up can be widened
    itself, and then the others catch up with it (rounds end at :data:`MAX_WIDEN`).
    Updates ``found`` and returns it."""
    while True:
        most = max((len(f["earlier"]) + 1 for f in found.values()), default=1)
        behind = [h for h in studies if len(found[h]["earlier"]) + 1 < most]
        if not behind:
            return found
        for head in behind:
            print(f"{head}: {most} rounds of {n_trials} {kind}trials, as the most widened head",
                  flush=True)
            found[head] = search_widening(studies[head], spaces[head], n_trials, rounds=most)


def ranges_drawn(storage: str) -> dict:
    """``{study name: {knob: [[low, high], ...]}}``: the ranges the stored trials of every
    study in ``storage`` were drawn from, as Optuna stored them with each trial (a study
    resumed with another range holds trials of both)."""
    import optuna

    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        knobs: dict = {}
        for t in study.trials:
            for k, d in t.distributions.items():
                if hasattr(d, "low") and [d.low, d.high] not in knobs.setdefault(k, []):
                    knobs[k].append([d.low, d.high])
        out[summary.study_name] = {k: sorted(v) for k, v in knobs.items()}
    return out
