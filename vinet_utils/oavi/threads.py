"""Thread control for OAVI fits (torch intra-op threads and numpy's OpenBLAS)."""

from __future__ import annotations

import torch

SMALL_FIT_WORK = 1_000_000  # fits with m * n^2 below this run on one thread (see OAVI.threads)




_OPENBLAS: list = []  # [ (get, set) or None ], filled on first use


def _openblas_threads_api():
    """``(get, set)`` for the thread count of the OpenBLAS that numpy loaded, or None.

    numpy's own BLAS calls (the host-side bookkeeping of a fit) are not governed by
    ``torch.set_num_threads``; on a busy machine its idle-spinning threads slow small
    products down by orders of magnitude, so fits limit them as well.
    """
    if _OPENBLAS:
        return _OPENBLAS[0]
    api = None
    try:
        import ctypes

        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
        for path in paths:
            lib = ctypes.CDLL(path)
            for suffix in ("64_", "_64_", ""):
                for prefix in ("scipy_openblas", "openblas"):
                    get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        get.restype, get.argtypes = ctypes.c_int, []
                        put.restype, put.argtypes = None, [ctypes.c_int]
                        api = (get, put)
                        break
                if api:
                    break
            if api:
                break
    except (OSError, AttributeError, ValueError):
        api = None
    _OPENBLAS.append(api)
    return api


class _threads:
    """Context manager: torch intra-op threads and numpy's OpenBLAS threads set to ``n``
    (if not None), restored afterwards."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        self.api = _openblas_threads_api() if self.n is not None else None
        self.old_blas = self.api[0]() if self.api else None
        if self.n is not None:
            if self.n != self.old:
                torch.set_num_threads(self.n)
            if self.api and self.old_blas != self.n:
                self.api[1](self.n)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)
        if self.api and self.old_blas is not None and self.api[0]() != self.old_blas:
            self.api[1](self.old_blas)
        return False
