"""A small transformer whose attention is written with ``torch.einsum`` (as in many research codebases).

QAG runs each two-operand einsum contraction as one batched matmul with slots on both operands.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model


class EinsumAttention(nn.Module):
    """Multi-head self-attention: scores = einsum('bhid,bhjd->bhij'), output = einsum('bhij,bhjd->bhid')."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape[0], x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (torch.einsum("bhid,bhjd->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class EinsumBlock(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EinsumAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EinsumTransformer(nn.Module):
    """Patch embedding -> einsum-attention blocks -> norm -> token mean -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, patch_size: int = 8,
                 dim: int = 32, depth: int = 2, num_heads: int = 4):
        super().__init__()
        if img_size % patch_size or dim % num_heads:
            raise ModelError(f"EinsumTransformer got img_size={img_size}, patch_size={patch_size}, dim={dim}, "
                             f"num_heads={num_heads}; expected img_size % patch_size == 0 and dim % num_heads == 0")
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[EinsumBlock(dim, num_heads, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


@register_model(input_shape=(3, 32, 32), default_data="cifar10")
def einsum_vit_tiny(num_classes: int = 10, **kwargs) -> EinsumTransformer:
    """Patch 8 (16 tokens), dim 32, 2 blocks of 4 heads with einsum attention: about 24k parameters."""
    return build_model(EinsumTransformer, "einsum_vit_tiny", num_classes=num_classes, **kwargs)
