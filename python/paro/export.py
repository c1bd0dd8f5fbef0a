"""Exports of a pattern file for other runtimes (docs/pytorch.md), as torch.save files that load
with torch.load(weights_only=True): tensors, numbers, strings, lists and dicts only.

- `to_flex(pattern)`: for FlexAttention. Orders (paro's numbering) with the six token gathers, and
  the tile masks as packed bits; `paro.FlexPattern.load(path).block_mask(slot, layer, device)`
  rebuilds the BlockMask of a layer in one call (kv-block indices, never an N x N mask).
- `to_authors(pattern, num_steps)`: the original authors' release layout: `permute` [layers, heads]
  in THEIR order numbering (FHW, FWH, HWF, HFW, WHF, WFH), `sparse` [slots, layers, heads, nb, nb]
  bool, with their uniform step-to-slot rule (slot = step * slots // num_steps). Where paro's slot
  boundaries differ, each uniform slot takes the paro slot most of its steps use; the steps that
  then get another mask than paro gives them are listed in `lost`.

    python3 -m paro.export PATTERN --flex OUT.pt --authors OUT.pth [--num-steps 50]
"""
import argparse
import collections
import os
import sys

try:
    import numpy as np
    import torch

    from . import pattern as pattern_mod
except ImportError as e:
    if __name__ != "__main__":
        raise
    print(f"paro export: this Python ({sys.executable}) lacks {e.name}; the exports need torch, numpy and h5py "
          "(set PARO_PYTHON to a Python that has them)", file=sys.stderr)
    sys.exit(2)

AUTHORS_ORDERS = ("FHW", "FWH", "HWF", "HFW", "WHF", "WFH")  # their runtime's indices 0..5
FLEX_FORMAT = "paro-flex"


def to_flex(p):
    gathers = torch.stack([torch.from_numpy(pattern_mod.order_gather(o, p.grid, p.text_tokens, p.text_position))
                           for o in pattern_mod.ORDER_NAMES])
    return {
        "format": FLEX_FORMAT, "version": 1, "block": p.block, "tokens": p.tokens, "tiles_per_side": p.tiles_per_side,
        "grid": list(p.grid), "text_tokens": p.text_tokens, "text_position": p.text_position,
        "slot_boundaries": torch.from_numpy(np.asarray(p.slot_boundaries, dtype=np.float64)),
        "order_names": list(pattern_mod.ORDER_NAMES),
        "order_gathers": gathers.to(torch.int64),  # [6, N]: permuted position -> original token
        "orders": [torch.tensor([pattern_mod.ORDER_NAMES.index(o) for o in layer], dtype=torch.int8)
                   for layer in p.orders],  # per layer [H]
        "masks_bits": [torch.from_numpy(np.ascontiguousarray(m)) for m in p.masks_bits],  # per layer [T, H, bytes]
    }


def flex_tiles(data, slot, layer):
    """[H, nb, nb] bool tile masks of one slot and layer of a to_flex dict."""
    nb = data["tiles_per_side"]
    bits = data["masks_bits"][layer][slot].numpy()  # [H, bytes]
    keep = np.unpackbits(bits, axis=-1, bitorder="little")[:, :nb * nb].astype(bool)
    return torch.from_numpy(keep).view(-1, nb, nb)


def flex_kv_blocks(data, slot, layer):
    """(kv_num_blocks [1, H, nb] int32, kv_indices [1, H, nb, nb] int32) of one slot and layer:
    per query tile row, the kept key tiles first, in increasing order."""
    keep = flex_tiles(data, slot, layer)
    num = keep.sum(-1).to(torch.int32)
    # Stable sort of "not kept" puts the kept columns first, each group in increasing order.
    idx = torch.sort((~keep).to(torch.int8), dim=-1, stable=True).indices.to(torch.int32)
    return num[None], idx[None]


def uniform_slot_map(p, num_steps):
    """For each of the authors' uniform slots, the paro slot it takes, and the steps whose mask
    then differs from paro's: ([T] paro slot per uniform slot, [(step, uniform slot, paro slot)])."""
    T = p.slots
    per_uniform = collections.defaultdict(list)
    for step in range(num_steps):
        per_uniform[step * T // num_steps].append((step, p.slot_of_step(step, num_steps)))
    chosen, lost = [], []
    for u in range(T):
        steps = per_uniform.get(u, [])
        counts = collections.Counter(s for _, s in steps)
        pick = min(counts, key=lambda s: (-counts[s], s)) if counts else min(u, T - 1)
        chosen.append(pick)
        lost += [(step, u, s) for step, s in steps if s != pick]
    return chosen, lost


def to_authors(p, num_steps):
    chosen, lost = uniform_slot_map(p, num_steps)
    heads = {p.heads(l) for l in range(p.layers)}
    if len(heads) != 1:
        raise ValueError(f"{p.path}: layers have different head counts {sorted(heads)}; the authors' layout needs one")
    H, nb = heads.pop(), p.tiles_per_side
    permute = torch.tensor([[AUTHORS_ORDERS.index(o) for o in layer] for layer in p.orders], dtype=torch.int64)
    sparse = torch.zeros(p.slots, p.layers, H, nb, nb, dtype=torch.bool)
    for u, s in enumerate(chosen):
        for l in range(p.layers):
            bits = np.unpackbits(p.masks_bits[l][s], axis=-1, bitorder="little")[:, :nb * nb]
            sparse[u, l] = torch.from_numpy(bits.reshape(H, nb, nb).astype(bool))
    return {"permute": permute, "sparse": sparse, "order_names": list(AUTHORS_ORDERS), "num_steps": num_steps,
            "paro_slot_of_uniform_slot": chosen, "lost": [list(x) for x in lost]}


def _save(obj, path):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="paro export", description="Export a pattern for FlexAttention or the "
                                 "authors' runtime (files for torch.load(weights_only=True))")
    ap.add_argument("pattern")
    ap.add_argument("--flex", metavar="OUT.pt")
    ap.add_argument("--authors", metavar="OUT.pth")
    ap.add_argument("--num-steps", type=int, default=50, help="sampling steps, for the authors' slot rule")
    a = ap.parse_args(argv)
    if not a.flex and not a.authors:
        print("paro export: give --flex and/or --authors", file=sys.stderr)
        return 2
    if a.num_steps < 1:
        print(f"paro export: option --num-steps: must be positive, got {a.num_steps}", file=sys.stderr)
        return 2
    try:
        p = pattern_mod.load(a.pattern)
        if a.flex:
            _save(to_flex(p), a.flex)
            print(f"wrote {a.flex} (FlexAttention: {p.layers} layers, {p.slots} slot(s))")
        if a.authors:
            data = to_authors(p, a.num_steps)
            _save(data, a.authors)
            print(f"wrote {a.authors} (authors' layout: permute {tuple(data['permute'].shape)}, "
                  f"sparse {tuple(data['sparse'].shape)})")
            if data["lost"]:
                steps = sorted({s for s, _, _ in data["lost"]})
                print(f"  note: their uniform slots differ from this pattern's; {len(steps)} of {a.num_steps} "
                      f"steps get another slot's mask than paro would use (steps {steps[0]}..{steps[-1]}; "
                      f"the list is in 'lost')")
    except (pattern_mod.PatternError, ValueError, OSError, RuntimeError) as e:  # torch.save raises RuntimeError
        print(f"paro export: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
