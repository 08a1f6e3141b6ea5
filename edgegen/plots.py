"""The bench report's figures (matplotlib, headless): accuracy against latency with the Pareto front, and sizes."""

from __future__ import annotations

from pathlib import Path

LABEL_OFFSETS = [(5, 4), (5, -11), (-5, 4), (-5, -11), (5, 15), (5, -22), (-5, 15), (-5, -22), (5, 26), (5, -33)]


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower latency and higher accuracy are better)."""
    keep = []
    for i, (lat, acc) in enumerate(points):
        if not any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for j, (l2, a2) in enumerate(points) if j != i):
            keep.append(i)
    return keep


def place_labels(ax, pts: list[tuple[float, float]], names: list[str], fontsize: int = 8) -> list[tuple[float, float]]:
    """Annotate each point with its name at the first offset (points) whose text box stays inside the axes and
    overlaps no label placed before and no other point: nearby models (an int8 TFLite and ONNX of one student) stay
    readable, and a point at the edge is labelled on its inner side. Returns the offsets."""
    ax.figure.canvas.draw()  # limits and transforms as they will be saved
    to_px = ax.transData.transform
    scale = ax.figure.dpi / 72.0
    points = [to_px(p) for p in pts]
    frame = ax.bbox.extents
    boxes, chosen = [], []
    for (x, y), name in zip(points, names):
        w, h = 0.6 * fontsize * len(name) * scale, fontsize * 1.2 * scale
        cands = [_box(x, y, w, h, dx, dy, scale) for dx, dy in LABEL_OFFSETS]
        inside = [i for i, b in enumerate(cands) if _within(b, frame)] or list(range(len(cands)))
        k = next((i for i in inside if _free(cands[i], boxes, points)), inside[0])
        dx, dy = LABEL_OFFSETS[k]
        boxes.append(cands[k])
        chosen.append((dx, dy))
        ax.annotate(
            name,
            pts[len(chosen) - 1],
            textcoords="offset points",
            xytext=(dx, dy),
            fontsize=fontsize,
            ha="right" if dx < 0 else "left",
        )
    return chosen


def _box(x, y, w, h, dx, dy, scale) -> tuple[float, float, float, float]:
    """The pixel box of a label of size ``w`` x ``h`` at offset (``dx``, ``dy``) points from (``x``, ``y``)."""
    left = x + dx * scale - (w if dx < 0 else 0)
    return left, y + dy * scale, left + w, y + dy * scale + h


def _within(b, frame) -> bool:
    """Box ``b`` lies inside the axes' pixel extents ``frame`` (x0, y0, x1, y1)."""
    return b[0] >= frame[0] and b[1] >= frame[1] and b[2] <= frame[2] and b[3] <= frame[3]


def _free(b, boxes, points) -> bool:
    """No placed label overlaps box ``b`` and no point lies within 3 pixels of it."""
    clear = all(b[2] <= o[0] or b[0] >= o[2] or b[3] <= o[1] or b[1] >= o[3] for o in boxes)
    return clear and not any(b[0] - 3 <= px <= b[2] + 3 and b[1] - 3 <= py <= b[3] + 3 for px, py in points)


def accuracy_vs_latency(rs: list[dict], t1: str, path: Path) -> list[int]:
    """Test accuracy against batch-1 p50 latency (log scale) of the bench rows ``rs`` at ``t1`` threads, the Pareto
    front starred and joined; returns the front's row indices (none on an emulated device: no latencies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(r.get(f"p50_t{t1}"), r["acc"]) for r in rs]
    if any(x is None for x, _ in pts):  # an emulated device: no latencies to plot
        pts = []
    front = pareto(pts)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (x, yv) in enumerate(pts):
        ax.scatter(x, yv, s=60, marker="*" if i in front else "o", color="C3" if i in front else "C0", zorder=3)
    if front:
        fp = sorted(pts[i] for i in front)
        ax.plot([p[0] for p in fp], [p[1] for p in fp], "--", color="C3", label="Pareto front")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel(f"batch-1 p50 latency, {t1} thread (ms, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if pts:
        place_labels(ax, pts, [r["name"] for r in rs])
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return front


def size_bars(rs: list[dict], path: Path, fmt_bytes) -> None:
    """Each model's size on disk, one bar each, labelled with ``fmt_bytes(size)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(rs)))
    ax.barh([r["name"] for r in rs], [r["size"] / 1024 for r in rs], color="C2")
    for i, r in enumerate(rs):
        ax.text(r["size"] / 1024, i, f" {fmt_bytes(r['size'])}", va="center", fontsize=8)
    ax.set_xlabel("file size (KB)")
    ax.invert_yaxis()
    ax.set_title("model size on disk")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
