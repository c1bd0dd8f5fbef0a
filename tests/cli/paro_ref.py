"""Independent numpy reference of paro's calibration (default objective), for the command tests.
Materializes P per head, permutes it per order, and scores exactly as docs/method.md says."""
import numpy as np

ORDERS = ["FHW", "FWH", "HFW", "HWF", "WFH", "WHF"]


def permutation(grid, text, position, order):
    F, H, W = grid
    g = np.arange(F * H * W).reshape(F, H, W)
    vid = g.transpose(["FHW".index(c) for c in order]).reshape(-1)
    if position == "prefix":
        return np.concatenate([np.arange(text), vid + text])
    return np.concatenate([vid, np.arange(text) + F * H * W])


def softmax_rows(q, k, scale):
    s = (q.astype(np.float64) @ k.astype(np.float64).T) * scale
    s -= s.max(1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(1, keepdims=True)


def tile_mass(p, idx, b):
    n = p.shape[0]
    nb = -(-n // b)
    pp = np.zeros((nb * b, nb * b))
    pp[:n, :n] = p[idx][:, idx]
    return pp.reshape(nb, b, nb, b).sum((1, 3))


def forced(n, b, text, position, grid):
    nb = -(-n // b)
    dense = np.zeros(nb, bool)
    if text:
        start = 0 if position == "prefix" else int(np.prod(grid))
        dense[start // b:(start + text - 1) // b + 1] = True
    if n % b:
        dense[-1] = True
    return dense[:, None] | dense[None, :]


def build_mask(mass, force, density):
    nb = mass.shape[0]
    target = max(1, int(np.floor(density * nb * nb + 0.5)))
    keep = force.copy().reshape(-1)
    free = np.flatnonzero(~keep)
    order = free[np.lexsort((free, -mass.reshape(-1)[free]))]
    keep[order[:target - keep.sum()]] = True
    return keep.reshape(nb, nb)


def free_recall(mass, force, density):
    """Share of the non-forced mass held by the best round(density * count) non-forced tiles."""
    free = np.sort(mass[~force])[::-1]
    if free.size == 0 or free.sum() <= 0:
        return 1.0
    k = min(max(1, int(np.floor(density * free.size + 0.5))), free.size)
    return free[:k].sum() / free.sum()
