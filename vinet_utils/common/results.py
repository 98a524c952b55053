"""Results files that record how they were made, written atomically."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    """The commit of the repository, with ``-dirty`` when its code has changes. Files
    under ``results/`` do not count: a run rewrites its own results folder.
    ``$VINET_GIT_COMMIT``, when set, wins: a copy of the code sent to another host (a
    rented GPU, say) may carry no git history, or a stale one."""
    if os.environ.get("VINET_GIT_COMMIT"):
        return os.environ["VINET_GIT_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)results"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("-dirty" if dirty else "")) if sha else None


def device_name(device: str | torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def environment(device: str | torch.device = "cpu") -> dict:
    """Where and with what a result was made."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": git_commit(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def jsonable(obj):
    """Plain JSON values: containers recursively, numpy/torch scalars and arrays as
    numbers and lists, paths as strings, and NaN or infinity as ``null`` (strict JSON):
    what :func:`read_json` gives back for what :func:`write_json` wrote, so a live record
    compares equal to a stored one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return obj


def write_json(path: str | os.PathLike, obj: dict) -> Path:
    """Write ``obj`` as JSON via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(jsonable(obj), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)


def save_torch(path: str | os.PathLike, obj) -> Path:
    """``torch.save`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def peak_host_memory_gb() -> float:
    """The largest resident memory this process has had so far, in GiB."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return round(kib / 2**20, 3)


def checksum(tensors) -> float:
    """A cheap fingerprint of some tensors (the sum of their absolute values, rounded):
    what a cache key holds so that work done on other inputs is not reused."""
    return round(float(sum(t.detach().double().abs().sum() for t in tensors)), 6)


def load_or_make(path: str | os.PathLike, key: dict, make) -> dict:
    """The dict saved at ``path`` when it was made with ``key``; otherwise ``make()``'s
    dict, saved there with ``key`` added. Every cache of a run (latents, projections,
    fits) goes through here; a cache whose pickled objects name modules this version
    of the package no longer has is made again."""
    path = Path(path)
    if path.exists():
        try:
            saved = torch.load(path, weights_only=False)
        except (ModuleNotFoundError, AttributeError):  # made by code laid out otherwise
            saved = {}
        if saved.get("key") == key:
            return saved
    out = {**make(), "key": key}
    save_torch(path, out)
    return out


#: Parameters that name folders of the machine a run ran on.
FOLDER_PARAMS = ("data_dir", "results_dir")


def portable_params(params: dict) -> dict:
    """``params`` with every folder of :data:`FOLDER_PARAMS` made fit to commit: relative
    to the repository where it lies inside it, else ``.../<its name>``, so that no
    results file carries the paths of the machine it was made on."""
    out = dict(params)
    for key in FOLDER_PARAMS:
        if out.get(key):
            path = Path(out[key]).expanduser().resolve()
            out[key] = (str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT)
                        else f".../{path.name}")
    return out


def record(stage: str, params: dict, metrics: dict, wall_time_s: float,
           device: str | torch.device = "cpu", env: dict | None = None) -> dict:
    """A results record: what was measured, with the parameters (folders made portable,
    :func:`portable_params`) and environment (``env``, as taken by :func:`environment`
    when the work started; now by default), and the process's peak host memory so far."""
    return {"stage": stage, "params": portable_params(params), "metrics": dict(metrics),
            "wall_time_s": round(float(wall_time_s), 3),
            "peak_host_memory_gb": peak_host_memory_gb(), **(env or environment(device))}


class Stage:
    """One notebook stage's record, started when made: the environment and commit are
    taken then, and :meth:`write` adds the measured wall time since then."""

    def __init__(self, name: str, params: dict, device: str | torch.device = "cpu"):
        self.name, self.params, self.device = name, dict(params), device
        self.env, self.t0 = environment(device), time.perf_counter()
        self.data = None  # the data's provenance (``Dataset.provenance()``), once loaded

    def write(self, path: str | os.PathLike, metrics: dict) -> Path:
        rec = record(self.name, self.params, metrics, time.perf_counter() - self.t0,
                     self.device, self.env)
        if self.data is not None:
            rec["data"] = self.data
        return write_json(path, rec)


#: Options whose value is a path of the machine that ran a command, and what results files show instead.
PRIVATE_OPTIONS = {"--peer": "<avi_at_scale folder>"}


def public_arguments(argv: list[str], private: dict[str, str] = PRIVATE_OPTIONS) -> list[str]:
    """Command-line arguments as a results file records them: the value of each option in
    ``private`` (a path of the machine that ran it) becomes the placeholder given there."""
    out, hide = [], None
    for a in argv:
        name = a.split("=", 1)[0]
        out.append(private[hide] if hide else f"{name}={private[name]}" if "=" in a and name in private else a)
        hide = a if a in private else None
    return out


def stage_seconds(run: str | os.PathLike) -> dict:
    """``{stage: seconds}`` a run's stages took from scratch: each stage's longest time
    in its ``stage_times.json`` (a later invocation that reused a finished stage is
    shorter); empty when the run has no timings. Every page and message that says how
    long a run took reads it here."""
    path = Path(run) / "stage_times.json"
    longest: dict = {}
    if path.exists():
        for r in read_json(path)["runs"]:
            for stage, secs in r["stage_seconds"].items():
                longest[stage] = max(longest.get(stage, 0.0), secs)
    return longest


def shown(path: str | os.PathLike) -> str:
    """``path`` for printing: relative to the repository, or to ``$VINET_RESULTS_DIR``,
    when inside them (so saved notebooks carry no machine-specific paths)."""
    path = Path(path).resolve()
    roots = [(REPO_ROOT, "")]
    if os.environ.get("VINET_RESULTS_DIR"):
        roots.insert(0, (Path(os.environ["VINET_RESULTS_DIR"]).resolve(), "$VINET_RESULTS_DIR/"))
    for root, prefix in roots:
        if path.is_relative_to(root):
            return prefix + str(path.relative_to(root))
    return str(path)


#: The parameters that make a baseline what it is. A run folder holds one baseline, and
#: every later stage in it (latents, fits, heads) is built on that one.
BASE_IDENTITY = ("dataset", "arch", "width", "n_train", "n_test", "seed", "epochs",
                 "batch_size", "lr", "lr_batch_size", "schedule", "weight_decay",
                 "label_smoothing", "holdout_frac")


def base_mismatch(recorded: dict, asked: dict) -> list[str]:
    """``"name=asked (the folder's baseline has recorded)"`` for every identity
    parameter that ``asked`` sets to another value than the ``recorded`` baseline."""
    return [f"{k}={asked[k]!r} (its baseline has {recorded.get(k)!r})" for k in BASE_IDENTITY
            if k in asked and k in recorded and asked[k] != recorded[k]]


def other_base_message(run: Path, what: str, differ: list[str]) -> str:
    """Why ``run`` cannot be reused for a run that differs in ``differ``, and what to do."""
    return (f"{shown(run)} holds a {what} made with other parameters: this run asks for "
            f"{'; '.join(differ)}. A different base needs a folder of its own: add "
            f"run_name=<name> (make reproduce SET=\"... run_name=<name>\"), or remove the "
            f"folder to start over.")
