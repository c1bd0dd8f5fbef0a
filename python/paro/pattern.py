"""Reading a paro-pattern file (docs/formats.md) with h5py, for the exports and the PyTorch paths.

Orders and PV formats are mapped by name (the file's order_names / pv_format_names), never by
index; masks are unpacked from their bits on demand.
"""
import bisect
import json
from dataclasses import dataclass

import h5py
import numpy as np

ORDER_NAMES = ("FHW", "FWH", "HFW", "HWF", "WFH", "WHF")  # paro's numbering (paro_order)


class PatternError(ValueError):
    """The file is not a pattern this package can read; the message names the file and dataset."""


@dataclass
class Pattern:
    path: str
    grid: tuple
    text_tokens: int
    text_position: str
    block: int
    tiles_per_side: int
    slot_boundaries: np.ndarray  # [T + 1] step fractions
    orders: list                 # per layer: [H] order names
    pv_formats: list             # per layer: [H] PV format names
    masks_bits: list             # per layer: [T, H, ceil(nb * nb / 8)] uint8
    options: dict

    @property
    def tokens(self):
        return self.text_tokens + self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def layers(self):
        return len(self.orders)

    @property
    def slots(self):
        return len(self.slot_boundaries) - 1

    def heads(self, layer):
        return len(self.orders[layer])

    def slot_of_step(self, step, num_steps):
        """The slot of sampling step `step` of `num_steps`: the one whose [b_t, b_t+1) holds
        step / num_steps (the last slot also takes 1.0), as `paro calibrate` assigns samples."""
        if not 0 <= step < num_steps:
            raise ValueError(f"step {step} is outside 0..{num_steps - 1}")
        f = step / num_steps
        return min(bisect.bisect_right(self.slot_boundaries, f, 1, len(self.slot_boundaries)) - 1, self.slots - 1)

    def mask(self, slot, layer, head):
        """[nb, nb] bool over the permuted sequence; True = compute the tile."""
        nb = self.tiles_per_side
        bits = np.unpackbits(self.masks_bits[layer][slot, head], bitorder="little")[:nb * nb]
        return bits.reshape(nb, nb).astype(bool)

    def permutation(self, layer, head):
        """gather[p] = the original token at permuted position p (text tokens stay in place)."""
        return order_gather(self.orders[layer][head], self.grid, self.text_tokens, self.text_position)


def order_gather(order, grid, text_tokens, text_position="prefix"):
    """Token gather of an order: video tokens listed with the order's last-named axis fastest."""
    f, h, w = grid
    raster = np.arange(f * h * w).reshape(f, h, w)
    video = raster.transpose(["FHW".index(a) for a in order]).reshape(-1)
    if text_position == "prefix":
        return np.concatenate([np.arange(text_tokens), video + text_tokens])
    return np.concatenate([video, np.arange(f * h * w, f * h * w + text_tokens)])


def _attr(f, path, name):
    try:
        v = f[path].attrs[name]
    except KeyError:
        raise PatternError(f"{f.filename}: {path} attribute {name}: missing") from None
    return v.decode() if isinstance(v, bytes) else v


def _dataset(f, path, name):
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise PatternError(f"{path}: {name}: missing")
    return f[name][()]


def _indices(f, path, name, count, what):
    """A dataset of codes into a table of `count` names; each must be in 0..count-1."""
    values = np.asarray(_dataset(f, path, name)).reshape(-1)
    if not np.issubdtype(values.dtype, np.integer):
        raise PatternError(f"{path}: {name}: holds {values.dtype}, expected integers")
    for v in values:
        if not 0 <= v < count:
            raise PatternError(f"{path}: {name}: {what} {v}")
    return [int(v) for v in values]


def load(path):
    """Reads a paro-pattern file (version 1 or 2). Throws PatternError naming the file and what is
    missing or malformed."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise PatternError(f"{path}: not an HDF5 file ({e})") from None
    try:
        with f:
            return _read(f, path)
    except (KeyError, IndexError, TypeError) as e:
        raise PatternError(f"{path}: malformed pattern ({e})") from None


def _read(f, path):
    if _attr(f, "/", "paro_format") != "paro-pattern":
        raise PatternError(f"{path}: attribute paro_format: not a paro-pattern")
    version = int(_attr(f, "/", "paro_version"))
    if version not in (1, 2):
        raise PatternError(f"{path}: attribute paro_version: {version} is not 1 or 2")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in _attr(f, "/", "order_names")]
    if sorted(names) != sorted(ORDER_NAMES):
        raise PatternError(f"{path}: attribute order_names: {names} are not the six orders")
    pv_names = (["int8", "fp16", "fp8_e4m3"] if version == 1 else
                [n.decode() if isinstance(n, bytes) else str(n) for n in _attr(f, "/", "pv_format_names")])
    block = int(_attr(f, "/", "block_q"))
    nb = int(_attr(f, "/", "tiles_per_side"))
    grid = tuple(int(x) for x in _attr(f, "/", "grid"))
    text = int(_attr(f, "/", "text_tokens"))
    if nb != -(-(text + grid[0] * grid[1] * grid[2]) // block):
        raise PatternError(f"{path}: attribute tiles_per_side: {nb} does not match the grid and block")
    # The C reader's rules (lib/core/paro/pattern.cpp), with its messages.
    boundaries = _dataset(f, path, "/slots/boundaries")
    if (boundaries.ndim != 1 or len(boundaries) < 2 or boundaries[0] != 0.0 or boundaries[-1] != 1.0):
        raise PatternError(f"{path}: /slots/boundaries: must run from 0 to 1 with at least one slot")
    if not np.all(boundaries[1:] > boundaries[:-1]):
        raise PatternError(f"{path}: /slots/boundaries: must increase strictly")
    orders, pv, masks = [], [], []
    count = int(_attr(f, "/layers", "count"))
    for l in range(count):
        g = f"layers/{l}"
        if g not in f:
            raise PatternError(f"{path}: /{g}: missing")
        orders.append([names[i] for i in _indices(f, path, f"/{g}/orders", len(names), "bad order index")])
        if version == 2:
            pv.append([pv_names[i] for i in _indices(f, path, f"/{g}/pv_format", len(pv_names),
                                                     "bad PV format code")])
        else:  # v1: pv_bits, as the runtime ran them
            pv.append(["fp16" if b == 16 else "int8" for b in _dataset(f, path, f"/{g}/pv_bits")])
        masks.append(_dataset(f, path, f"/{g}/masks"))
        if masks[-1].shape[-1] != (nb * nb + 7) // 8:
            raise PatternError(f"{path}: /{g}/masks: rows of {masks[-1].shape[-1]} bytes, expected {(nb * nb + 7) // 8}")
    return Pattern(path=str(path), grid=grid, text_tokens=text,
                   text_position=str(_attr(f, "/", "text_position")), block=block, tiles_per_side=nb,
                   slot_boundaries=boundaries, orders=orders, pv_formats=pv, masks_bits=masks,
                   options=json.loads(_attr(f, "/", "options")))
