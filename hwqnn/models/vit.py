"""A small vision transformer (Dosovitskiy et al., 2021) for 32x32 inputs.

Attention is written with explicit ``q @ k^T`` and ``attn @ v`` matmuls and ``nn.Linear`` projections
(no fused ``scaled_dot_product_attention``), so QAG sees both activation-activation matmuls and can
quantize their inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model


class Attention(nn.Module):
    """Multi-head self-attention: fused qkv projection, scaled dot products, output projection."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape[0], x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out)


class Mlp(nn.Sequential):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Strided-conv patch embedding + learned positions -> blocks -> norm -> token mean -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, patch_size: int = 4,
                 dim: int = 64, depth: int = 4, num_heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        if img_size % patch_size:
            raise ModelError(f"VisionTransformer got img_size={img_size}, patch_size={patch_size}; "
                             "expected img_size to be a multiple of patch_size")
        if dim % num_heads:
            raise ModelError(f"VisionTransformer got dim={dim}, num_heads={num_heads}; "
                             "expected dim to be a multiple of num_heads")
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        num_patches = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        tokens = self.norm(self.blocks(tokens))
        return self.head(tokens.mean(dim=1))


@register_model(input_shape=(3, 32, 32), default_data="cifar10")
def vit_tiny(num_classes: int = 10, **kwargs) -> VisionTransformer:
    """Patch 4 (64 tokens), dim 64, 4 blocks of 4 heads, MLP ratio 2: about 0.14M parameters."""
    return build_model(VisionTransformer, "vit_tiny", num_classes=num_classes, **kwargs)
