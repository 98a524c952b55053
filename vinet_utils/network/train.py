"""One readable, resumable training loop, and what trains with it: image classifiers
(the baseline, end-to-end fine-tuning) and heads on cached latents.

SGD with Nesterov momentum and weight decay, a one-cycle (linear warm-up, linear
decay) or cosine schedule, optional label smoothing, channels_last on CPU and bf16
autocast on CUDA. A checkpoint is written atomically after every epoch; a run that
was interrupted resumes from it, and a finished run is reused instead of retrained.
Shuffling and augmentation for epoch ``e`` are seeded by ``(seed, e)`` alone, so a
resumed run sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from vinet_utils.common.progress import tqdm

from vinet_utils.network import data as D
from vinet_utils.common.results import (BASE_IDENTITY, base_mismatch, checksum, environment,
                                        other_base_message, read_json, record, save_torch, shown,
                                        write_json)
from vinet_utils.common.seeds import derive_seed, seed_everything

SCHEDULES = ("onecycle", "cosine", "constant")


class TrainingDiverged(FloatingPointError):
    """The training loss stopped being finite."""


def scaled_lr(lr: float, batch_size: int, lr_batch_size: int | None) -> float:
    """The learning rate for ``batch_size`` when ``lr`` is stated at ``lr_batch_size``:
    scaled linearly with the batch size (the usual rule for SGD); ``lr`` itself when
    ``lr_batch_size`` is ``None`` (an lr given for this batch size)."""
    return lr if lr_batch_size is None else lr * batch_size / lr_batch_size


def lr_note(lr: float, batch_size: int, lr_batch_size: int | None) -> str:
    """``batch 100 at lr 0.078 (lr 0.4 is stated at batch 512, scaled linearly)``."""
    used = scaled_lr(lr, batch_size, lr_batch_size)
    note = f"batch {batch_size} at lr {used:g}"
    return note + (f" (lr {lr:g} is stated at batch {lr_batch_size}, scaled linearly)"
                   if used != lr else "")


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int = 512
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    schedule: str = "onecycle"
    warmup_frac: float = 0.15
    seed: int = 0


def lr_factor(step: int, total: int, schedule: str, warmup_frac: float) -> float:
    """Multiplier of the peak learning rate at ``step`` of ``total``."""
    t = step / max(total, 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    w = max(warmup_frac, 1e-8)
    return t / w if t < w else max(0.0, (1 - t) / (1 - w))


def autocast(device: str | torch.device, enabled: bool = True):
    """bf16 autocast on CUDA when ``enabled``; nothing on CPU (fp32 is fastest there
    without AMX). Heads on cached latents run without it: a generator's value is a small
    difference of large terms, which bf16 would round away."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, batches: Iterable, device="cpu", amp: bool = True) -> dict:
    """Mean cross-entropy and accuracy (%) of ``model`` over ``batches``."""
    model.eval()
    loss, correct, n = 0.0, 0, 0
    for x, y in batches:
        with autocast(device, amp):
            out = model(x)
        loss += F.cross_entropy(out.float(), y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    return {"loss": loss / max(n, 1), "acc": 100.0 * correct / max(n, 1)}


def train(model: torch.nn.Module, cfg: TrainConfig, epoch_batches: Callable[[int], Iterable],
          steps_per_epoch: int, eval_fn: Callable[[], dict], ckpt_path: str | Path,
          device="cpu", params=None, progress: bool = True, desc: str = "train",
          key: dict | None = None, amp: bool = True,
          names: tuple[str, str] = ("lr", "batch_size")) -> dict:
    """Train ``model`` (its trainable parameters, or ``params``) and return the history.

    ``epoch_batches(e)`` yields the training batches of epoch ``e``; ``eval_fn()``
    returns ``{"loss", "acc"}`` on the test split. The checkpoint at ``ckpt_path``
    holds everything needed to resume; a checkpoint made with another config, or
    another ``key`` (what else identifies the run, such as the model's initial
    weights), is ignored and the run starts over. ``amp``: bf16 autocast on CUDA.

    A loss that stops being finite stops the training there with a
    :class:`TrainingDiverged` that names the parameters ``names`` (the learning rate's
    and the batch size's) and their values; the checkpoint keeps the last good epoch.
    """
    ckpt_path = Path(ckpt_path)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(_param_groups(model, params, cfg), lr=cfg.lr,
                          momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, cfg.schedule, cfg.warmup_frac))
    history, start = _resume(ckpt_path, model, opt, sched, cfg, key, device)
    if start >= cfg.epochs:
        return history
    for epoch in tqdm(range(start, cfg.epochs), desc=desc, initial=start, total=cfg.epochs,
                      disable=not progress):
        model.train()
        t0, run_loss, n = time.perf_counter(), 0.0, 0
        for step, (x, y) in enumerate(epoch_batches(epoch)):
            with autocast(device, amp):
                out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(_diverged(desc, value, epoch, step, cfg, names))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run_loss += value * len(y)
            n += len(y)
        ev = eval_fn()
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(run_loss / max(n, 1))
        history["test_loss"].append(ev["loss"])
        history["test_acc"].append(ev["acc"])
        history["epoch_time_s"].append(time.perf_counter() - t0)
        left = history["epoch_time_s"][-1] * (cfg.epochs - epoch - 1)
        if epoch == start and left > 60 and progress:  # only where waiting is worth a word
            _say_how_long(desc, history["epoch_time_s"][-1], cfg.epochs - epoch - 1)
        save_torch(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "history": history,
                               "epoch": epoch + 1, "config": asdict(cfg), "key": key})
    return history


def _param_groups(model: nn.Module, params: list, cfg: TrainConfig) -> list[dict]:
    """Weight decay on matrices and kernels, none on vectors; a submodule with an
    ``lr_scale`` (a projection trained slowly) trains its parameters at that share of
    the learning rate. Without such modules: the two groups decay, no decay."""
    scale = {id(p): m.lr_scale for m in model.modules() if getattr(m, "lr_scale", 1.0) != 1.0
             for p in m.parameters()}
    groups = {(True, 1.0): [], (False, 1.0): []}
    for p in params:
        groups.setdefault((p.ndim > 1, scale.get(id(p), 1.0)), []).append(p)
    return [{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr": cfg.lr * s}
            for (decay, s), ps in groups.items() if ps or s == 1.0]


def _diverged(desc: str, value: float, epoch: int, step: int, cfg: TrainConfig,
              names: tuple[str, str]) -> str:
    lr_name, bs_name = names
    return (f"{desc}: the training loss became {value} at epoch {epoch + 1}, step {step + 1}: "
            f"the training diverged with {lr_name}={cfg.lr:g} at {bs_name}={cfg.batch_size}. "
            f"Lower {lr_name}; a profile states its lr at its own batch size and scales it "
            f"linearly with {bs_name} unless lr is set (docs/profiles.md).")


def _resume(ckpt_path: Path, model, opt, sched, cfg: TrainConfig, key, device) -> tuple[dict, int]:
    """``(history, first epoch to run)``: from the checkpoint at ``ckpt_path`` when it
    was made with the same ``cfg`` and ``key`` (model, optimizer and schedule restored),
    else an empty history from epoch 0."""
    history = {"epoch": [], "train_loss": [], "test_loss": [], "test_acc": [], "epoch_time_s": []}
    if not ckpt_path.exists():
        return history, 0
    state = torch.load(ckpt_path, map_location=device, weights_only=False)
    if state["config"] != asdict(cfg) or state.get("key") != key:  # another run's: replaced
        return history, 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return state["history"], state["epoch"]


def _say_how_long(desc: str, first_epoch_s: float, left: int) -> None:
    print(f"{desc}: first epoch took {first_epoch_s:.1f} s; about "
          f"{first_epoch_s * left / 60:.1f} min for the other {left}", flush=True)


#: Committed weights: half precision, in files of at most this many bytes.
WEIGHTS_PART_BYTES = 15 * 2**20


def weights_files(run_dir: str | Path, name: str = "01_baseline") -> list[Path]:
    """The committed half-precision weight files of ``<run_dir>/<name>``, in order."""
    return sorted(Path(run_dir).glob(f"{name}.weights-*.pt"),
                  key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def export_weights(model: nn.Module, run_dir: str | Path, name: str = "01_baseline") -> list[Path]:
    """Write ``model``'s weights in half precision (integer buffers as they are) to
    ``<name>.weights-<i>.pt`` files of at most :data:`WEIGHTS_PART_BYTES` each: small
    enough to commit, so that a clone can use a trained base without training it."""
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    parts, size = [{}], 0
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if parts[-1] and size + nbytes > WEIGHTS_PART_BYTES:
            parts.append({})
            size = 0
        parts[-1][k] = v
        size += nbytes
    for old in weights_files(run_dir, name):
        old.unlink()
    return [save_torch(Path(run_dir) / f"{name}.weights-{i}.pt", part)
            for i, part in enumerate(parts)]


def finished_weights(run_dir: str | Path, name: str = "01_baseline", device="cpu") -> dict | None:
    """The state dict of a finished run: from its checkpoint when there is one, else
    from its committed half-precision files (as float32); ``None`` when neither exists."""
    ckpt = Path(run_dir) / f"{name}.ckpt"
    if ckpt.exists():
        return torch.load(ckpt, map_location=device, weights_only=False)["model"]
    files = weights_files(run_dir, name)
    if not files:
        return None
    state = {}
    for f in files:
        state.update(torch.load(f, map_location=device, weights_only=True))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_baseline(run_dir: str | Path, name: str = "01_baseline", device="cpu",
                  params: dict | None = None):
    """The network notebook 01 trained in ``run_dir``, rebuilt from its results file.

    With ``params`` (a later stage's parameters), a ``ValueError`` names every identity
    parameter (``n_train``, ``seed``, ...) in which they differ from the baseline's."""
    from vinet_utils.network.models import build
    run_dir = Path(run_dir)
    out = run_dir / f"{name}.json"
    if not out.exists() or not ((run_dir / f"{name}.ckpt").exists() or weights_files(run_dir, name)):
        raise FileNotFoundError(f"no finished baseline in {shown(run_dir)}: run notebook 01 "
                                f"with the same profile, dataset, arch and run_name first "
                                f"(make reproduce)")
    rec = read_json(out)
    differ = base_mismatch(rec.get("params", {}), params or {})
    if differ:
        raise ValueError(f"this stage asks for {'; '.join(differ)}: every stage of a run "
                         f"folder must use its baseline's values ({shown(run_dir)})")
    weights = finished_weights(run_dir, name, device)
    classes, in_channels = weights["linear.weight"].shape[0], weights["conv1.weight"].shape[1]
    model = build(rec["params"]["arch"], classes, in_channels, rec["params"]["width"])
    model.load_state_dict(weights)
    return model.to(device).eval(), rec


def image_batches(x, y, batch_size, mean, std, device, *, train=False, seed=0):
    """Batches of an image split; training batches are shuffled and augmented."""
    return D.batches(x, y, batch_size, mean, std, shuffle=train, train_augment=train,
                     seed=seed, drop_last=train, device=device, channels_last=True)


def train_classifier(model, ds: D.Dataset, cfg: TrainConfig, run_dir: str | Path,
                     name: str = "01_baseline", device="cpu", params: dict | None = None,
                     progress: bool = True, key: dict | None = None,
                     strict: bool = True, names: tuple[str, str] = ("lr", "batch_size")) -> dict:
    """Train (or reuse, or resume) an image classifier and write ``<name>.json``.

    Files in ``run_dir``: ``<name>.ckpt`` (resumable checkpoint) and ``<name>.json``
    (results with parameters and environment). Returns the results record.

    A finished or interrupted run is picked up only when it was made with the same
    ``cfg``, the same ``key`` and the same identity parameters (``params``, see
    :data:`vinet_utils.workflow.params.BASE_IDENTITY`). Otherwise, with ``strict`` (a baseline:
    everything after it was built on it) a ``ValueError`` names what differs, before
    any training; without it (a derived run such as an end-to-end fine-tuning) the run
    starts over. A training split smaller than one batch stops before any work with a
    ``ValueError``; ``names`` are the parameters behind ``cfg.lr`` and
    ``cfg.batch_size``, for that message and a diverged training's."""
    run_dir = Path(run_dir)
    if len(ds.train_x) < cfg.batch_size:
        raise ValueError(f"{names[1]}={cfg.batch_size} is larger than the training split "
                         f"({len(ds.train_x)} images): there is no full batch to train on. "
                         f"Use {names[1]} <= {len(ds.train_x)}, or a larger n_train.")
    ckpt, out = run_dir / f"{name}.ckpt", run_dir / f"{name}.json"
    model.to(device).to(memory_format=torch.channels_last)
    params = dict(params or {})
    identity = {k: params[k] for k in BASE_IDENTITY if k in params}
    key = {**identity, **(key or {})} or None
    found = _previous_run(out, ckpt, device)
    if found is not None:
        differ = base_mismatch(found["params"], params)
        differ += [f"{k}={v!r} (its run has {found['config'].get(k)!r})"
                   for k, v in asdict(cfg).items() if found["config"].get(k) != v]
        if found["key"] not in (None, key) and not differ:
            differ.append("another model or head (its run's key differs)")
        if differ and strict:
            raise ValueError(other_base_message(run_dir, f"{name} run", differ))
        if not differ and found["finished"]:
            model.load_state_dict(finished_weights(run_dir, name, device))
            print(f"reusing the finished run in {shown(out)}"
                  + ("" if ckpt.exists() else " (its committed half-precision weights)"))
            return found["record"]
        if differ:
            ckpt.unlink(missing_ok=True)  # another run's checkpoint: replaced, silently
    t0, env = time.perf_counter(), environment(device)  # the commit whose code runs

    def epoch_batches(e):
        return image_batches(ds.train_x, ds.train_y, cfg.batch_size, ds.mean, ds.std, device,
                             train=True, seed=cfg.seed * 100_003 + e)

    def eval_fn():
        return evaluate(model, image_batches(ds.test_x, ds.test_y, 1024, ds.mean, ds.std,
                                             device), device)

    history = train(model, cfg, epoch_batches, D.n_batches(len(ds.train_x), cfg.batch_size, True),
                    eval_fn, ckpt, device=device, progress=progress, desc=name, key=key,
                    names=names)
    metrics = {"test_acc": history["test_acc"][-1], "test_loss": history["test_loss"][-1],
               "train_time_s": sum(history["epoch_time_s"]), "n_train": len(ds.train_x),
               "n_test": len(ds.test_x)}
    rec = record(name, params, metrics, time.perf_counter() - t0, device, env)
    rec.update(train_config=asdict(cfg), key=key, history=history, finished=True,
               lr_used=cfg.lr, data=ds.provenance())
    if strict:  # a baseline: its weights are small enough to commit beside its record
        rec["weights_files"] = [p.name for p in export_weights(model, run_dir, name)]
    write_json(out, rec)
    return rec


def _previous_run(out: Path, ckpt: Path, device) -> dict | None:
    """What made the run already in ``out``/``ckpt`` (or in ``out`` and its committed
    weights): its parameters, training config and key, whether it finished, and its
    record; ``None`` when there is none."""
    rec = read_json(out) if out.exists() else {}
    if rec.get("finished") and (ckpt.exists() or weights_files(out.parent, out.stem)):
        return {"params": rec.get("params", {}), "config": rec.get("train_config", {}),
                "key": rec.get("key"), "finished": True, "record": rec}
    if not ckpt.exists():
        return None
    state = torch.load(ckpt, map_location=device, weights_only=False)
    return {"params": state.get("key") or {}, "config": state.get("config", {}),
            "key": state.get("key"), "finished": False, "record": None}


def latent_batches(z: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                   seed: int = 0, device="cpu"):
    """Batches of cached latents, as float32 (the cache may hold float16)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z), generator=g) if shuffle else torch.arange(len(z))
    for i in range(0, len(z), batch_size):
        idx = order[i:i + batch_size]
        yield z[idx].to(device, torch.float32), y[idx].to(device)


def init_key(head: nn.Module) -> dict:
    """What identifies a head before training: its structure and initial weights."""
    state = head.state_dict()
    key = {"shapes": {k: list(v.shape) for k, v in state.items()},
           "checksum": checksum(v for v in state.values() if v.is_floating_point())}
    indices = [v for k, v in state.items()
               if not v.is_floating_point() and not k.endswith("num_batches_tracked")]
    if indices:  # integer buffers (which monomials a head multiplies): a sum would not
        h = hashlib.sha256()  # tell one choice of indices from a permutation of it
        for v in indices:
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        key["indices"] = h.hexdigest()[:16]
    slow = {name: m.lr_scale for name, m in head.named_modules()
            if getattr(m, "lr_scale", 1.0) != 1.0}
    if slow:  # the same weights trained at another rate are another run
        key["lr_scale"] = slow
    return key


def train_head(head: nn.Module, lat: dict, cfg: TrainConfig, ckpt_path: str | Path,
               device="cpu", progress: bool = True, desc: str = "head") -> dict:
    """Fine-tune ``head`` on cached latents ``{"train", "train_y", "test", "test_y"}``.

    Resumable like any training run (a checkpoint of another head, or of a head
    trained on the latents of another base or other images, is not reused);
    returns the history plus the final accuracy and ``wall_time_s``, the time its
    epochs took when they ran (a head read back from its checkpoint keeps its own)."""
    head.to(device)
    # what shaped the head: its initial weights, and the base and data its latents came
    # from (a retrained base, or other images, never reuse an old head)
    key = {**init_key(head), "latents": lat.get("key")}

    def epoch_batches(e):
        return latent_batches(lat["train"], lat["train_y"], cfg.batch_size, shuffle=True,
                              seed=cfg.seed * 100_003 + e, device=device)

    def eval_fn():
        return evaluate(head, latent_batches(lat["test"], lat["test_y"], 4096, shuffle=False,
                                             device=device), device, amp=False)

    history = train(head, cfg, epoch_batches, D.n_batches(len(lat["train"]), cfg.batch_size),
                    eval_fn, ckpt_path, device=device, progress=progress, desc=desc, key=key,
                    amp=False, names=("finetune_lr", "finetune_batch_size"))
    history["test_acc_final"] = history["test_acc"][-1]
    history["wall_time_s"] = sum(history["epoch_time_s"])
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
