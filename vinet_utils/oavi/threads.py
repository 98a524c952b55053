"""How many threads an OAVI fit runs on, and holding torch and numpy to that number.

Small fits (``m * n^2`` below :data:`SMALL_FIT_WORK`) run on one thread: their time goes
into many small products, where waking threads costs more than it saves. Larger fits on
the CPU run on at most as many threads as other processes leave idle cores
(:func:`busy_elsewhere`): an OpenMP thread waiting for a core held by another busy
process stalls every parallel region. ``threads`` overrides both. On the CPU the count
applies to a block's large products only (:func:`blas_threads` around them); the rest of
the fit, thousands of small products, runs on one thread. numpy's BLAS calls are not
governed by ``torch.set_num_threads``, so the OpenBLAS that numpy loaded is set directly;
every count is restored after the fit. numpy and scipy each load an OpenBLAS of their own;
both are set.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import threading
from typing import Callable, Iterator

import torch

SMALL_FIT_WORK = 1_000_000  # fits with m * n^2 below this run on one thread

_OPENBLAS: list = []  # [[(get, set), ...]], filled on first use


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


def busy_elsewhere(loadavg: str | None = None, own_running: int | None = None) -> float:
    """Cores that other processes keep busy: the 1-minute load average, but at most the
    threads running right now besides this process's (``/proc/loadavg``'s fourth field, or the
    text ``loadavg``, less ``own_running``: by default this process's threads that run now,
    :func:`running_threads_here`, plus the calling one). The load average alone counts the
    fitting process itself after a minute of work, and a busy benchmark would then fit on
    one thread of an idle machine; the count alone counted the BLAS threads that still spin
    for a moment after a fit's products, and the next fit ran on one thread."""
    here = loadavg is None and own_running is None
    if loadavg is None:
        try:
            with open("/proc/loadavg") as f:
                loadavg = f.read()
        except OSError:
            return os.getloadavg()[0]
    fields = loadavg.split()
    load, others = float(fields[0]), int(fields[3].split("/")[0]) - 1.0
    if here and min(load, others) > 0:  # only then is this process's share worth reading
        own_running = running_threads_here()
    return max(0.0, min(load, others - (own_running or 0)))


def running_threads_here() -> int:
    """This process's threads running or runnable now, besides the calling one (0 where
    ``/proc`` cannot tell)."""
    me, count = str(threading.get_native_id()), 0
    try:
        for tid in os.listdir("/proc/self/task"):
            if tid != me:  # os.read: a third of open()'s time per file, read once per fit
                fd = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
                try:
                    count += os.read(fd, 1024).rsplit(b")", 1)[1].split()[0] == b"R"
                finally:
                    os.close(fd)
    except (OSError, IndexError):
        return 0
    return count


def openblas_threads_apis() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """``(get, set)`` for the thread count of each OpenBLAS loaded: numpy's, and scipy's, which
    the compiled loops' products (numba) call."""
    if _OPENBLAS:
        return _OPENBLAS[0]
    import scipy.linalg.blas  # noqa: F401  (scipy's OpenBLAS, loaded now so that it is found)

    apis = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
        for path in paths:
            api = _openblas_functions(ctypes.CDLL(path))
            if api:
                apis.append(api)
    except (OSError, AttributeError, ValueError):
        pass
    _OPENBLAS.append(apis)
    return apis


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
    """Every loaded OpenBLAS on ``n`` threads (nothing if None or unknown), restored on exit."""
    apis = openblas_threads_apis() if n is not None else []
    old = [get() for get, _ in apis]
    for (_, put), was in zip(apis, old):
        if was != n:
            put(n)
    try:
        yield
    finally:
        for (_, put), was in zip(apis, old):
            if was != n:
                put(was)


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
