"""A small vision transformer built from ``nn.TransformerEncoder`` (``nn.MultiheadAttention`` inside).

The same family as ``vit.py``, written the way most users write it: PyTorch's own encoder layers, whose
attention and feed-forward GEMMs run in fused kernels (the encoder-layer fast path in eval mode). QAG
must still reach all of them: Q/K/V and output projections, ``q k^T``, ``attn v`` and both FFN linears.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._builder import build_model
from ._registry import ModelError, register_model


class MhaVisionTransformer(nn.Module):
    """Strided-conv patch embedding + learned positions -> nn.TransformerEncoder -> norm -> token mean -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, patch_size: int = 8,
                 dim: int = 32, depth: int = 2, num_heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        if img_size % patch_size or dim % num_heads:
            raise ModelError(f"MhaVisionTransformer got img_size={img_size}, patch_size={patch_size}, dim={dim}, "
                             f"num_heads={num_heads}; expected img_size % patch_size == 0 and dim % num_heads == 0")
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, num_heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.head(self.norm(self.encoder(tokens)).mean(dim=1))


@register_model(input_shape=(3, 32, 32), default_data="cifar10")
def vit_mha_tiny(num_classes: int = 10, **kwargs) -> MhaVisionTransformer:
    """Patch 8 (16 tokens), dim 32, 2 pre-norm nn.TransformerEncoderLayers of 4 heads: about 24k parameters."""
    return build_model(MhaVisionTransformer, "vit_mha_tiny", num_classes=num_classes, **kwargs)
