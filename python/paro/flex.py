"""The pure-PyTorch path: permute q/k/v by each head's order, FlexAttention with the pattern's
block mask (built from kv-block lists, never an N x N mask), inverse permute. For GPUs or dtypes
the CUDA runtime does not serve; it computes in the inputs' dtype, without quantization.

    fp = paro.FlexPattern.load("pattern.flex.pt")   # from `paro export --flex`, or FlexPattern(to_flex(...))
    out = fp.attention(q, k, v, layer=3, slot=0)    # q, k, v [batch, heads, N, D]

Needs torch.nn.attention.flex_attention (PyTorch 2.5+); wrap in torch.compile for speed.
"""
import numbers

import torch

from . import export

_compiled_flex = None


def _flex_module():
    """torch.nn.attention.flex_attention, or RuntimeError saying which PyTorch this is."""
    try:
        from torch.nn.attention import flex_attention
    except ImportError:
        raise RuntimeError("FlexPattern needs PyTorch >= 2.5 (torch.nn.attention.flex_attention); "
                           f"this is {torch.__version__}") from None
    return flex_attention


def _flex_attention(compiled):
    """FlexAttention, unfused (materializes scores: small N, tests) or compiled (the fused kernel)."""
    global _compiled_flex
    flex_attention = _flex_module().flex_attention
    if not compiled:
        return flex_attention
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex


class FlexPattern:
    def __init__(self, data):
        if not isinstance(data, dict):
            raise TypeError(f"data must be the dict of paro.export.to_flex or `paro export --flex`, got "
                            f"{type(data).__name__}")
        if data.get("format") != export.FLEX_FORMAT:
            raise ValueError(f"not a {export.FLEX_FORMAT} dict (format {data.get('format')!r})")
        self.data = data
        self._masks = {}  # (slot, layer, device) -> BlockMask
        self._gathers = {}  # (layer, device) -> [H, N] int64

    @classmethod
    def load(cls, path):
        """The file `paro export PATTERN --flex OUT.pt` wrote (not the HDF5 pattern itself)."""
        with open(path, "rb") as f:
            head = f.read(8)
        if head == b"\x89HDF\r\n\x1a\n":
            raise ValueError(f"{path} is an HDF5 file (a paro pattern?): export it first with "
                             f"`paro export {path} --flex OUT.pt` and load OUT.pt")
        return cls(torch.load(path, weights_only=True))

    def _layer(self, layer):
        count = len(self.data["orders"])
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not 0 <= layer < count:
            raise ValueError(f"layer {layer!r} is outside the pattern's 0..{count - 1}")
        return layer

    def _slot(self, slot):
        count = len(self.data["slot_boundaries"]) - 1
        if isinstance(slot, bool) or not isinstance(slot, numbers.Integral) or not 0 <= slot < count:
            raise ValueError(f"slot {slot!r} is outside the pattern's 0..{count - 1}")
        return slot

    @property
    def tokens(self):
        return self.data["tokens"]

    def block_mask(self, slot, layer, device):
        """The BlockMask of one slot and layer over the permuted sequence, in one call (cached).
        The kept tiles are its kv-block lists; its mask_mod looks the same tiles up, because
        FlexAttention's unfused path applies only mask_mod and the fused one needs it for the
        ragged last tile."""
        key = (self._slot(slot), self._layer(layer), str(device))
        if key not in self._masks:
            BlockMask = _flex_module().BlockMask
            num, idx = (t.to(device) for t in export.flex_kv_blocks(self.data, slot, layer))
            tiles = export.flex_tiles(self.data, slot, layer).to(device)
            block = self.data["block"]

            def mask_mod(b, h, q_idx, kv_idx):
                return tiles[h, q_idx // block, kv_idx // block]

            self._masks[key] = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=block, mask_mod=mask_mod,
                                                        seq_lengths=(self.tokens, self.tokens))
        return self._masks[key]

    def gather(self, layer, device):
        """[H, N]: for each head, the original token at each permuted position."""
        key = (self._layer(layer), str(device))
        if key not in self._gathers:
            orders = self.data["orders"][layer].long()
            self._gathers[key] = self.data["order_gathers"][orders].to(device)
        return self._gathers[key]

    def attention(self, q, k, v, layer, slot, scale=None, compiled=True):
        """Attention of one layer and slot; compiled=False runs FlexAttention unfused."""
        if q.dim() != 4:
            raise ValueError(f"q must be [batch, heads, N, D], got shape {tuple(q.shape)}")
        b, h, n, d = q.shape
        if n != self.tokens:
            raise ValueError(f"{n} tokens, the pattern has {self.tokens}")
        for name, t in (("k", k), ("v", v)):
            if t.shape != q.shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, q has {tuple(q.shape)}")
        self._slot(slot), self._layer(layer)
        _flex_module()
        g = self.gather(layer, q.device)
        if g.shape[0] != h:
            raise ValueError(f"{h} heads, layer {layer} of the pattern has {g.shape[0]}")
        index = g[None, :, :, None].expand(b, h, n, d)
        permuted = [t.gather(2, index) for t in (q, k, v)]
        # The fused kernel's tiles must divide the pattern's (64 x 64).
        options = {"BLOCK_M": self.data["block"], "BLOCK_N": self.data["block"]} if compiled else None
        out = _flex_attention(compiled)(*permuted, block_mask=self.block_mask(slot, layer, q.device), scale=scale,
                                        kernel_options=options)
        return torch.empty_like(out).scatter_(2, index, out)
