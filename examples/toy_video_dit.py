"""A small video-transformer-like model for paro's examples and tests (no downloads).

Tokens: `text` text tokens, then an F x H x W video grid in raster order (w fastest), as in
CogVideoX. Each block: LayerNorm, q/k/v projections, a 3-D rotary embedding, joint self-attention
through torch.nn.functional.scaled_dot_product_attention, an output projection and an MLP. The
weights are random except for a locality part of q and k: head h of a block looks mostly at tokens
that share its "tight" axes (frame for a spatial head, frame and row for a row head, ...), which is
the structure paro's orders turn into dense blocks.
"""
import math

import torch
import torch.nn.functional as F

KINDS = {"spatial": (0,), "temporal": (1, 2), "row": (0, 1), "column": (0, 2)}  # tight axes among (f, h, w)


def grid_coords(grid, text):
    """[N, 3] float coordinates (f, h, w); text tokens sit far from every video token."""
    f, h, w = grid
    ff, hh, ww = torch.meshgrid(torch.arange(f), torch.arange(h), torch.arange(w), indexing="ij")
    video = torch.stack([ff, hh, ww], -1).reshape(-1, 3).float()
    return torch.cat([torch.full((text, 3), -1000.0), video])


def rope_features(coords, axes, dim, sharpness):
    """[N, dim] features whose dot products peak where the coordinates along `axes` are equal."""
    per_axis = dim // (2 * len(axes))
    feats = []
    for a in axes:
        freqs = torch.exp(torch.linspace(0, -math.log(64.0), per_axis))
        ang = coords[:, a:a + 1] * freqs * math.pi / 2
        feats += [ang.cos(), ang.sin()]
    x = torch.cat(feats, -1)
    x = F.pad(x, (0, dim - x.shape[-1]))
    return x * math.sqrt(sharpness / len(axes))


class Block(torch.nn.Module):
    def __init__(self, width, heads, head_dim, kinds, coords, sharpness):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm = torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * heads * head_dim)
        self.out = torch.nn.Linear(heads * head_dim, width)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.GELU(), torch.nn.Linear(2 * width, width))
        with torch.no_grad():
            self.qkv.weight.mul_(0.2)
        local = torch.stack([rope_features(coords, KINDS[kinds[h % len(kinds)]], head_dim, sharpness)
                             for h in range(heads)])  # [heads, N, D]
        self.register_buffer("local", local)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = q + self.local, k + self.local  # the locality the weights were made to have
        o = F.scaled_dot_product_attention(q, k, v)  # looked up at call time: paro.Capture sees it
        x = x + self.out(o.transpose(1, 2).reshape(b, n, -1))
        return x + self.mlp(x)


class ToyVideoDiT(torch.nn.Module):
    def __init__(self, grid=(4, 8, 12), text=16, blocks=2, heads=4, head_dim=64, width=64, sharpness=12.0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.grid, self.text = tuple(grid), text
        coords = grid_coords(grid, text)
        kinds = list(KINDS)
        self.blocks = torch.nn.ModuleList(
            Block(width, heads, head_dim, kinds[i % len(kinds):] + kinds[:i % len(kinds)], coords, sharpness)
            for i in range(blocks))
        self.embed = torch.nn.Linear(width, width)

    @property
    def tokens(self):
        return self.text + self.grid[0] * self.grid[1] * self.grid[2]

    def forward(self, x):
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return x
