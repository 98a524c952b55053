"""The rules for OAVI's parameters and points, each raising a ``ValueError`` that names the
parameter, the value and what is allowed."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from vinet_utils.oavi.order import ORDERINGS

ORACLES = ("ihb", "bpcg", "fw", "abm")


def default_tau(psi: float) -> float:
    """``tau = (3/2)^D`` with ``D = ceil(-log(psi) / log 4)``, clamped to at least 2: the l1
    bound for which OAVI provably stops by degree ``D``."""
    D = math.ceil(-math.log(psi) / math.log(4.0))
    return max(1.5 ** D, 2.0)


def check_tau(name: str, value) -> None:
    """The one rule for tau: ``None`` (use :func:`default_tau`), a number ``>= 2`` (the l1
    bound on the non-leading coefficients is ``tau - 1 >= 1``) or ``inf`` (no bound)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < 2:
        raise ValueError(f"{name} must be a number >= 2 (the l1 bound is ||c||_1 <= {name} - 1), inf (no bound) "
                         f"or None (the default (3/2)^D), got {value!r}")


def _is_int(value, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= low


def check_parameters(psi, max_degree, tau, oracle, dtype, cg_tol, cg_max_iter, ordering, block_size,
                     threads) -> None:
    """Check the parameters of :class:`~vinet_utils.oavi.OAVI`."""
    if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi) or psi <= 0:
        raise ValueError(f"psi must be a finite number > 0, got {psi!r}")
    if not _is_int(max_degree, 1):
        raise ValueError(f"max_degree must be an int >= 1, got {max_degree!r}")
    if oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {', '.join(map(repr, ORACLES))}; got {oracle!r}")
    check_tau("tau", tau)
    if tau is not None and math.isinf(tau) and oracle in ("bpcg", "fw"):
        raise ValueError(f"oracle {oracle!r} needs a finite tau (it works on the l1 ball of radius tau - 1)")
    if cg_tol is not None and not (isinstance(cg_tol, numbers.Real) and cg_tol > 0):
        raise ValueError(f"cg_tol must be > 0 or None, got {cg_tol!r}")
    if not _is_int(cg_max_iter, 1):
        raise ValueError(f"cg_max_iter must be an int >= 1, got {cg_max_iter!r}")
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {', '.join(map(repr, ORDERINGS))}; got {ordering!r}")
    if not _is_int(block_size, 1):
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
    if threads is not None and not _is_int(threads, 1):
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")


def as_points(X, name: str = "X") -> tuple[torch.Tensor, bool]:
    """Check a point array ``(m, n)`` of finite real numbers; returns ``(tensor, was_numpy)``."""
    was_numpy = not isinstance(X, torch.Tensor)
    if was_numpy:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a numeric array of shape (m, n)") from err
        if arr.ndim == 2 and arr.size and not np.isfinite(arr).all():  # checked in numpy: no torch threads
            raise ValueError(f"{name} contains NaN or infinite values")
        X = torch.from_numpy(arr)
        if X.ndim == 2 and X.numel():
            return X, was_numpy
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (m, n) (points x features); got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(X.shape)}")
    if not (X.is_floating_point() or X.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X, was_numpy
