"""How many threads an OAVI fit runs on, and holding torch and numpy to that number.

Small fits (``m * n^2`` below :data:`SMALL_FIT_WORK`) run on one thread: their time goes
into many small products, where waking threads costs more than it saves. Larger fits on
the CPU run on at most as many threads as other processes leave idle cores
(:func:`busy_elsewhere`): an OpenMP thread waiting for a core held by another busy
process stalls every parallel region. ``threads`` overrides both. On the CPU the count
applies to a block's large products only (:func:`blas_threads` around them); the rest of
the fit, thousands of small products, runs on one thread. numpy's BLAS calls are not
governed by ``torch.set_num_threads``, so the OpenBLAS that numpy loaded is set directly;
every count is restored after the fit.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from typing import Callable, Iterator

import torch

SMALL_FIT_WORK = 1_000_000  # fits with m * n^2 below this run on one thread

_OPENBLAS: list = []  # [(get, set) or None], filled on first use


def choose_threads(threads: int | None, shape: tuple, device: torch.device) -> int | None:
    """Torch CPU threads for a fit on points of ``shape`` (None: leave torch's setting)."""
    if device.type != "cpu":
        return None
    if threads is not None:
        return threads
    m, n = (tuple(shape) + (1, 1))[:2]
    if m * n * n < SMALL_FIT_WORK:
        return 1
    try:
        idle = len(os.sched_getaffinity(0)) - busy_elsewhere()
    except (AttributeError, OSError):
        return None
    return max(1, min(torch.get_num_threads(), int(math.floor(idle + 0.5))))


def busy_elsewhere(loadavg: str | None = None) -> float:
    """Cores that other processes keep busy: the 1-minute load average, but at most the
    threads running right now besides this one (``/proc/loadavg``'s fourth field, or the
    text ``loadavg``). The load average alone counts the fitting process itself after a
    minute of work, and a busy benchmark would then fit on one thread of an idle machine."""
    if loadavg is None:
        try:
            with open("/proc/loadavg") as f:
                loadavg = f.read()
        except OSError:
            return os.getloadavg()[0]
    fields = loadavg.split()
    running = int(fields[3].split("/")[0])
    return max(0.0, min(float(fields[0]), running - 1.0))


def openblas_threads_api() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """``(get, set)`` for the thread count of the OpenBLAS that numpy loaded, or None."""
    if _OPENBLAS:
        return _OPENBLAS[0]
    api = None
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
        for path in paths:
            api = _openblas_functions(ctypes.CDLL(path))
            if api:
                break
    except (OSError, AttributeError, ValueError):
        api = None
    _OPENBLAS.append(api)
    return api


def _openblas_functions(lib) -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """The thread getter and setter of one loaded OpenBLAS, under any of its symbol names."""
    for suffix in ("64_", "_64_", ""):
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """numpy's OpenBLAS on ``n`` threads (nothing if None or unknown), restored on exit."""
    api = openblas_threads_api() if n is not None else None
    old = api[0]() if api else None
    if api and old != n:
        api[1](n)
    try:
        yield
    finally:
        if api and old != n:
            api[1](old)


@contextlib.contextmanager
def limited_threads(n: int | None) -> Iterator[None]:
    """Torch intra-op threads and numpy's OpenBLAS threads set to ``n`` (nothing if None),
    restored on exit."""
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        with blas_threads(n):
            yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
