"""Inference throughput, measured the way the paper reports it (docs/method.md §7).

Images per second on the test split at batch size 256, in eval mode under
``torch.inference_mode()``, after warm-up, as mean +- std over repetitions. All models
are measured **in the same run, interleaved** (each repetition visits every model, in
a seeded random order), so that a slow patch of a noisy machine hits all of them
alike and the ratios to the baseline can be trusted. Inputs are normalised and placed
on the device beforehand: only the network is timed.

:func:`flops` counts each model's floating-point operations per image
(``torch.utils.flop_counter``): the full network's count over a truncated one's is
the speed-up a truncated network could reach if every layer ran at the same rate,
the limit its measured speed-up is read against. :func:`breakdown` splits each
VI-Net's time between its truncated base and its head, to show which part keeps a
cut below its limit (``python -m vinet_utils.experiments.throughput breakdown --profile cpu``).
"""

from __future__ import annotations

import shlex
import sys
import time

import numpy as np
import torch
from vinet_utils.common.progress import tqdm

from vinet_utils.network import data as D


def input_batches(x: torch.Tensor, mean, std, batch_size: int = 256, n_batches: int | None = None,
                  device="cpu") -> list[torch.Tensor]:
    """The test images as ready-to-run float batches (channels_last) on ``device``.

    Only full batches of ``batch_size``, so every timed batch is alike; where the split
    holds fewer images than one batch, a single batch of all of them, and a line says
    so and what would give full batches."""
    if len(x) == 0:
        raise ValueError("the test split is empty: there is nothing to time (n_test)")
    if len(x) < batch_size:
        print(f"the test split has {len(x)} images, fewer than eval_batch_size={batch_size}: "
              f"timing one batch of {len(x)} images (n_test >= {batch_size}, or "
              f"eval_batch_size <= {len(x)}, times full batches)")
        batch_size = len(x)
    y = torch.zeros(len(x), dtype=torch.long)
    out = [xb for xb, _ in D.batches(x, y, batch_size, mean, std, drop_last=True, device=device,
                                      channels_last=True)]
    return out[:n_batches] if n_batches else out


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def time_pass(model, batches, device="cpu") -> float:
    """Seconds for one pass of ``model`` over ``batches``."""
    _sync(device)
    t0 = time.perf_counter()
    for xb in batches:
        model(xb)
    _sync(device)
    return time.perf_counter() - t0


@torch.inference_mode()
def flops(models: dict, image: torch.Tensor) -> dict:
    """Floating-point operations per image of each model (name -> count), counted on
    the host over a batch of one ``image`` (C, H, W), in eval mode; a multiply-add is
    two. Matrix products and convolutions are counted, as FlopCounterMode does."""
    from torch.utils.flop_counter import FlopCounterMode

    x = image.detach().float().cpu()[None].contiguous(memory_format=torch.channels_last)
    out = {}
    for name, model in models.items():
        was = next(model.parameters()).device
        model = model.cpu().eval()
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
        out[name] = int(counter.get_total_flops())
        model.to(was)
    return out


def fastest(speed: dict) -> dict:
    """Each model in the faster of the forms it was timed in: ``speed`` names a form
    ``"<model> [<form>]"`` (the plain name is the eager form); the result has one entry
    per model, with the form it was taken in."""
    best = {}
    for name, rec in speed.items():
        model, _, form = name.partition(" [")
        form = form.rstrip("]") or "eager"
        if model not in best or rec["mean"] > best[model]["mean"]:
            best[model] = {**rec, "form": form}
    return best


def flop_limits(counts: dict, full: str = "ResNet (full)") -> dict:
    """Each model's FLOP limit on its speed-up: the full network's count over its own."""
    return {name: counts[full] / n for name, n in counts.items() if n}


def prepare(model: torch.nn.Module, device="cpu", compile: bool = False):
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    return torch.compile(model) if compile else model


def measure(models: dict, batches: list[torch.Tensor], repeats: int = 5, warmup: int = 1,
            device="cpu", compile: bool = False, seed: int = 0, progress: bool = True) -> dict:
    """Interleaved throughput of every model in ``models`` (name -> module).

    Returns name -> ``{"mean", "std", "runs"}`` in images per second."""
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to report a std (got {repeats})")
    ready = {name: prepare(m, device, compile) for name, m in models.items()}
    n_images = sum(len(b) for b in batches)
    for m in ready.values():  # warm-up (and compilation) outside the timed runs
        for _ in range(warmup):
            time_pass(m, batches[: max(2, len(batches) // 4)], device)
    rng = np.random.default_rng(seed)
    runs = {name: [] for name in ready}
    for _ in tqdm(range(repeats), desc="throughput", disable=not progress):
        for i in rng.permutation(len(ready)):
            name = list(ready)[i]
            runs[name].append(n_images / time_pass(ready[name], batches, device))
    return {name: {"mean": float(np.mean(r)), "std": float(np.std(r, ddof=1)), "runs": r}
            for name, r in runs.items()}


def breakdown(nets: dict, batches: list[torch.Tensor], repeats: int = 5, device="cpu",
              seed: int = 0, full: str = "ResNet (full)", head_batches: int = 8) -> dict:
    """Where each VI-Net's time goes. ``nets`` holds the full network under ``full`` and
    VI-Nets (a :class:`~vinet_utils.method.vinet.VINet` or one prepared for inference,
    ``inference.FlatVINet``: a ``base`` and a ``tail`` that runs the head on its map) as
    ``"VI-Net <cut>"``. Each VI-Net, its truncated base alone and the full network are
    timed in one interleaved run (:func:`measure`), and their FLOPs counted
    (:func:`flops`). Per cut: the speed-up over the full network and the share of its
    FLOP limit reached, for the VI-Net and for its base alone, and the head's share of
    the FLOPs and of the time.

    The head is timed on its own (:func:`time_heads`), on its base's maps of the first
    ``head_batches`` batches: a head that costs a few percent would otherwise be the
    difference of two whole-network timings, each of which moves by more than that
    between repetitions on a busy or small machine. Its share of the time is its time
    over its base's plus its own. A base that alone falls short of its limit keeps the
    cut short of it, whatever the head costs."""
    bases = {f"base {n.split()[-1]}": m.base for n, m in nets.items() if n.startswith("VI-Net")}
    timed = {**nets, **bases}
    speed = measure(timed, batches, repeats, device=device, seed=seed)
    heads = time_heads({n: m for n, m in nets.items() if n != full}, batches[:head_batches],
                       repeats, device)
    counts = flops(timed, batches[0][0])
    us = {k: 1e6 / s["mean"] for k, s in speed.items()}  # microseconds per image
    cuts = {}
    for name in (n for n in nets if n != full):
        v = name.split()[-1]
        base = f"base {v}"
        row = {}
        for label, key in (("", name), ("base_", base)):
            speedup, limit = us[full] / us[key], counts[full] / counts[key]
            row.update({f"{label}speedup": speedup, f"{label}flop_limit": limit,
                        f"{label}share_of_limit": speedup / limit})
        row.update(us_per_image=us[name], base_us_per_image=us[base],
                   head_us_per_image=heads[name],
                   head_time_fraction=heads[name] / (us[base] + heads[name]),
                   head_flop_fraction=1 - counts[base] / counts[name])
        cuts[v] = row
    return {"cuts": cuts, "throughput": speed, "flops_per_image": counts,
            "head_batches": min(head_batches, len(batches))}


@torch.inference_mode()
def time_heads(nets: dict, batches: list[torch.Tensor], repeats: int = 5,
               device="cpu") -> dict:
    """Microseconds per image each net's head takes (name -> mean over ``repeats``):
    ``net.tail`` timed on the maps ``net.base`` made of ``batches``, computed first and
    held, so only the head is timed."""
    out = {}
    for name, net in nets.items():
        net = prepare(net, device)
        maps = [net.base(xb) for xb in batches]
        time_pass(net.tail, maps[:2], device)  # warm-up
        n_images = sum(len(m) for m in maps)
        out[name] = float(np.mean([time_pass(net.tail, maps, device) / n_images * 1e6
                                   for _ in range(repeats)]))
    return out


def main(argv=None) -> None:
    """``python -m vinet_utils.experiments.throughput breakdown --profile cpu``: :func:`breakdown` on
    a finished run's VI-Nets, built as notebook 06 builds them, written to
    ``<run>/06_breakdown.json``."""
    import argparse

    from vinet_utils.method import inference, vinet
    from vinet_utils.workflow.pipeline import notebook_namespace
    from vinet_utils.common.results import write_json

    ap = argparse.ArgumentParser(prog="python -m vinet_utils.experiments.throughput",
                                 description="Where each VI-Net's inference time goes.")
    ap.add_argument("command", choices=["breakdown"])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--note", default="", help="free text recorded with the results "
                                               "(what else ran on the machine)")
    a = ap.parse_args(argv)
    from vinet_utils.workflow import stage
    S = stage.begin("06_throughput", notebook_namespace("06_throughput_table", a.profile))
    p = S.params
    nets = {"ResNet (full)": S.model}
    for v in p["variants"]:
        nets[f"VI-Net {v}"] = vinet.rebuild(S.model, S.fit(v), S.ds, S.run,
                                            keep_per_class=p["keep_per_class"],
                                            train_projection=p["train_projection"], device=S.device)
    nets = {name: inference.prepare(net) for name, net in nets.items()}
    batches = input_batches(S.ds.test_x, S.ds.mean, S.ds.std, p["eval_batch_size"],
                            p["throughput_batches"], S.device)
    out = breakdown(nets, batches, a.repeats, S.device, p["seed"])
    out.update(note=a.note, form="eager", threads=torch.get_num_threads(),
               command="python -m vinet_utils.experiments.throughput " + " ".join(
                   shlex.quote(x) for x in (argv or sys.argv[1:])))
    path = S.run / "06_breakdown.json"
    write_json(path, out)
    for v, r in out["cuts"].items():
        print(f"{v}: VI-Net {r['speedup']:.2f}x of {r['flop_limit']:.2f}x ({r['share_of_limit']:.0%}); "
              f"base alone {r['base_speedup']:.2f}x of {r['base_flop_limit']:.2f}x "
              f"({r['base_share_of_limit']:.0%}); head {r['head_time_fraction']:.1%} of the time, "
              f"{r['head_flop_fraction']:.0%} of the FLOPs")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
