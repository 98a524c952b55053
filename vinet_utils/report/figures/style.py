"""The figures' shared style: one theme, markers, legends outside the data, labels
that do not overlap, and saving beside the results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def save(fig, path: str | Path | None):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


#: Markers of the series that share a panel; with a colour of its own for each series as
#: well, no two series look alike ("s" is kept for the paper's lines).
MARKERS = ("o", "D", "^", "v", "P", "X", "h", "<", ">", "p", "*", "d", "8", "H")
#: Suffix of the end-to-end heads' names in notebook 05's table.
E2E = ", end to end"
#: A figure colours at most this many classes; beyond it, a fixed sample of this many is
#: drawn and the title says so.
MAX_CLASSES_SHOWN = 10
#: A legend here covers no data: to the right of its axes.
OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def legend_outside(ax, **kw):
    """``ax``'s legend to the right of the axes, where it covers no data (a legend that
    seaborn drew is moved there, its title kept)."""
    if ax.get_legend() is not None and "handles" not in kw:
        sns.move_legend(ax, **OUTSIDE, **kw)
        return ax.get_legend()
    return ax.legend(**OUTSIDE, **kw)


def distinct_styles(names) -> dict:
    """``{name: (colour, marker)}`` with no colour and no marker used twice. A head and
    its end-to-end line (``name + E2E``) share a hue, dark and light (tab20's pairs), up
    to ten heads; past that, evenly spaced hues."""
    names = list(dict.fromkeys(names))
    heads = list(dict.fromkeys(n.removesuffix(E2E) for n in names))
    if len(heads) <= 10:
        pal = sns.color_palette("tab20", 20)
        colour = {n: pal[2 * heads.index(n.removesuffix(E2E)) + int(n.endswith(E2E))]
                  for n in names}
    else:
        colour = dict(zip(names, sns.color_palette("husl", len(names))))
    return {n: (colour[n], MARKERS[i % len(MARKERS)]) for i, n in enumerate(names)}


def class_sample(n_classes: int, max_classes: int = MAX_CLASSES_SHOWN, seed: int = 0) -> list:
    """The classes a figure shows: all of them up to ``max_classes``, else a fixed
    (seeded) sample of that many, in index order."""
    if n_classes <= max_classes:
        return list(range(n_classes))
    return sorted(np.random.default_rng(seed).choice(n_classes, max_classes, replace=False).tolist())


def _along(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Points every 3 px (display coordinates) from ``p`` to ``q``, both ends included."""
    steps = max(1, int(np.hypot(*(q - p)) / 3))
    return p + (q - p) * np.linspace(0, 1, steps + 1)[:, None]


def _tie(box, point) -> np.ndarray:
    """Points every 3 px along the line that ties a label's box (from its centre, as
    matplotlib draws it) to its ``point``, outside the box."""
    line = _along(np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]), np.asarray(point))
    return line[~((line[:, 0] > box.x0) & (line[:, 0] < box.x1)
                  & (line[:, 1] > box.y0) & (line[:, 1] < box.y1))]


def _inside(points: np.ndarray, box) -> int:
    """How many of ``points`` (display coordinates) lie in ``box``."""
    if not len(points):
        return 0
    return int(((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)).sum())


def _crosses(tie: np.ndarray, ties: np.ndarray, near: float) -> int:
    """1 where a tie line passes within ``near`` of an earlier one (they cross), else 0."""
    if not (len(tie) and len(ties)):
        return 0
    return int((np.hypot(*(tie[:, None, :] - ties[None, :, :]).transpose(2, 0, 1)) < near).any())


def place_labels(ax, items, fontsize: float = 8, **text_kw) -> list:
    """Write each ``(x, y, text)`` (``text_kw`` may be per item: ``(x, y, text, kw)``)
    beside its point so that no label overlaps another, a data point or line of the
    axes, or the axes' edge. Candidate places ring the point, nearest first; the first
    free one is taken, else the least crowded, tied to its point by a thin line that no
    other label, nor another such line, may cross either. A text
    already written at (nearly) the same place is written once. Returns the labels."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    obstacles = []  # display coordinates of every data point, and of data lines every 3 px
    for line in ax.get_lines():
        if line.get_transform() != ax.transData or not line.get_visible():
            continue  # reference lines (axhline / axvline) are not data
        xy = ax.transData.transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(1)]
        for p, q in zip(xy, xy[1:]):
            obstacles.extend(_along(p, q))
        obstacles.extend(xy)
    for coll in ax.collections:
        offs = np.asarray(coll.get_offsets(), dtype=float)
        if len(offs):
            obstacles.extend(coll.get_offset_transform().transform(offs))
    obstacles = np.array(obstacles).reshape(-1, 2)
    frame = ax.get_window_extent(renderer)
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    placed, written, out, ties = [], [], [], np.empty((0, 2))
    for item in items:
        x, y, text = item[:3]
        kw = {**text_kw, **(item[3] if len(item) > 3 else {})}
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        here = ax.transData.transform((x, y))
        if any(t == text and np.hypot(*(here - h)) < 4 for t, h in written):
            continue
        best = None
        for r in (5, 10, 17, 26, 38, 52, 70):
            for dx, dy in directions:
                off = (dx * r, dy * r * 0.8)
                ann = ax.annotate(text, (x, y), xytext=off, textcoords="offset points",
                                  fontsize=fontsize, ha={1: "left", -1: "right", 0: "center"}[dx],
                                  va={1: "bottom", -1: "top", 0: "center"}[dy], **kw)
                box = ann.get_window_extent(renderer).padded(1.5 * px)
                inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1
                          and box.y0 >= frame.y0 and box.y1 <= frame.y1)
                tie = _tie(box, here) if r > 10 else np.empty((0, 2))  # a far label's line
                hits = sum(box.overlaps(b) for b in placed) + _inside(ties, box)
                hits += sum(_inside(tie, b) > 0 for b in placed) + _inside(obstacles, box.padded(3 * px))
                hits += _crosses(tie, ties, 2 * px)
                cost = hits + (0 if inside else 1000)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box, r, tie)
                else:
                    ann.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, ann, box, r, tie = best
        if r > 10:  # far from its point: a thin line ties them
            xytext, ha, va = ann.xyann, ann.get_ha(), ann.get_va()
            ann.remove()
            ann = ax.annotate(text, (x, y), xytext=xytext, textcoords="offset points",
                              fontsize=fontsize, ha=ha, va=va, **kw,
                              arrowprops=dict(arrowstyle="-", lw=0.6, color="0.4",
                                              shrinkA=0, shrinkB=3))
        placed.append(box)
        ties = np.vstack([ties, tie])
        written.append((text, here))
        out.append(ann)
    return out
