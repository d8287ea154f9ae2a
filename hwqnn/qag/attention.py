"""Attention as quantizable GEMMs: ``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention``.

PyTorch runs attention in fused kernels (``multi_head_attention_forward``, SDPA, the encoder-layer fast
path) that QAG cannot put slots into. The modules here compute the same thing from plain calls:

* :class:`QuantAttentionCore`: ``softmax(q k^T * scale + mask) v`` with two activation-activation
  matmuls, ``qk`` and ``av``, each with a slot on both operands; it replaces SDPA calls in fx graphs;
* :class:`QuantMultiheadAttention`: replaces an ``nn.MultiheadAttention`` (same parameters, same
  outputs, ``need_weights`` and masks included): ``q_proj``/``k_proj``/``v_proj`` and ``out_proj`` get
  weight slots, the core gets activation slots. The softmax stays float.

Layouts follow ``cost_models.compound`` so that QAG's rows equal ``extract_workload``'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cost_models import mha_fast_path_disabled

from .ops import QuantFunctionOp, QuantModuleOp
from .slot import QuantSlot

#: ``make_slots(weight_role, channels, channel_axis) -> (weight slot, activation slot)``
SlotFactory = Callable[[str, "int | None", int], "tuple[QuantSlot, QuantSlot]"]


class QuantCompound(nn.Module):
    """A module QAG built from several QuantOps (attention, a recurrent layer). fx keeps it as a leaf and
    module swap leaves its inside alone."""


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _additive_mask(mask: Tensor | None, dtype: torch.dtype, masked_when: bool) -> Tensor | None:
    """A float mask to add to the scores: a bool mask becomes -inf where it equals ``masked_when``."""
    if mask is None or mask.is_floating_point():
        return mask
    blocked = mask if masked_when else ~mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(blocked, float("-inf"))


class QuantAttentionCore(QuantCompound):
    """``softmax(q @ k^T * scale + mask) @ v`` with a QuantSlot on all four matmul operands.

    Its forward takes ``F.scaled_dot_product_attention``'s arguments (a bool ``attn_mask`` is True where
    attention is allowed, as in SDPA).
    """

    def __init__(self, base_name: str, make_slots: SlotFactory):
        super().__init__()
        self.base_name = base_name
        self.qk = QuantFunctionOp(_join(base_name, "qk"), "matmul", torch.matmul,
                                  *make_slots("activation", None, 0), weight_is_param=False)
        self.av = QuantFunctionOp(_join(base_name, "av"), "matmul", torch.matmul,
                                  *make_slots("activation", None, 0), weight_is_param=False)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                enable_gqa: bool = False) -> Tensor:
        L, S = query.shape[-2], key.shape[-2]
        if enable_gqa and key.shape[-3] != query.shape[-3]:
            repeat = query.shape[-3] // key.shape[-3]
            key = key.repeat_interleave(repeat, dim=-3)
            value = value.repeat_interleave(repeat, dim=-3)
        scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        scores = self.qk(query * scale, key.transpose(-2, -1))
        if is_causal:
            causal = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        mask = _additive_mask(attn_mask, scores.dtype, masked_when=False)
        if mask is not None:
            scores = scores + mask
        attn = torch.softmax(scores, dim=-1)
        if dropout_p > 0.0:
            attn = F.dropout(attn, dropout_p, training=True)
        return self.av(attn, value)


class QuantMultiheadAttention(QuantCompound):
    """``nn.MultiheadAttention`` as Q/K/V projections, the attention core, and the output projection.

    It holds the original parameters under their own names (``in_proj_weight`` or ``q_proj_weight``...,
    ``out_proj``), so the conversion keeps the float model's numbers; a packed ``in_proj_weight`` is
    used as three row blocks, one weight slot each.
    """

    def __init__(self, path: str, mha: nn.MultiheadAttention, make_slots: SlotFactory):
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = mha.embed_dim, mha.num_heads, mha.head_dim
        self.kdim, self.vdim = mha.kdim, mha.vdim
        self.batch_first = mha.batch_first
        self.dropout = mha.dropout
        self.add_zero_attn = mha.add_zero_attn
        self._qkv_same_embed_dim = mha._qkv_same_embed_dim
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                     "bias_k", "bias_v"):
            setattr(self, name, getattr(mha, name))
        E = self.embed_dim
        for name in ("q_proj", "k_proj", "v_proj"):  # each [E, in_dim]: per-channel on its E rows
            setattr(self, name, QuantFunctionOp(_join(path, name), "linear", F.linear,
                                                *make_slots("weight", E, 0), weight_is_param=True))
        self.core = QuantAttentionCore(path, make_slots)
        w_slot, a_slot = make_slots("weight", E, 0)
        self.out_proj = QuantModuleOp(_join(path, "out_proj"), mha.out_proj, w_slot, a_slot)

    def _projection_weights(self) -> list[tuple[Tensor, Tensor | None]]:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            weights = self.in_proj_weight.split(E)
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = self.in_proj_bias.split(E) if self.in_proj_bias is not None else (None, None, None)
        return list(zip(weights, biases))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        del is_causal  # a hint only: nn.MultiheadAttention requires attn_mask with it
        batched = query.dim() == 3
        if not batched:  # unbatched [L, E]: a batch of one
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        H, D = self.num_heads, self.head_dim
        (wq, bq), (wk, bk), (wv, bv) = self._projection_weights()
        q = self.q_proj(query, wq, bq)
        k = self.k_proj(key, wk, bk)
        v = self.v_proj(value, wv, bv)
        mask = _additive_mask(attn_mask, q.dtype, masked_when=True)
        padding = _additive_mask(key_padding_mask, q.dtype, masked_when=True)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(1, N, E)])
            v = torch.cat([v, self.bias_v.expand(1, N, E)])
            mask = None if mask is None else F.pad(mask, (0, 1))
            padding = None if padding is None else F.pad(padding, (0, 1))
        q, k, v = (t.reshape(t.shape[0], N, H, D).permute(1, 2, 0, 3) for t in (q, k, v))  # [N, H, L|S, D]
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(N, H, 1, D)], dim=2)
            v = torch.cat([v, v.new_zeros(N, H, 1, D)], dim=2)
            mask = None if mask is None else F.pad(mask, (0, 1))
            padding = None if padding is None else F.pad(padding, (0, 1))
        S = k.shape[2]
        if mask is not None:
            mask = mask.reshape(N, H, L, S) if mask.dim() == 3 else mask
        if padding is not None:
            padding = padding.reshape(N, 1, 1, S)
            mask = padding if mask is None else mask + padding
        scores = self.core.qk(q / math.sqrt(D), k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        attn = torch.softmax(scores, dim=-1)
        if self.dropout > 0.0 and self.training:
            attn = F.dropout(attn, self.dropout, training=True)
        out = self.core.av(attn, v)  # [N, H, L, D]
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(L, N, E))
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = attn.mean(dim=1) if average_attn_weights else attn
        return out, (weights if batched else weights.squeeze(0))



class _FastPathOff:
    """Mixin: run a torch.nn transformer layer with the fused fast path off. The fast path reads the raw
    weights into one kernel and would bypass every slot inside the layer."""

    def forward(self, *args, **kwargs):
        with mha_fast_path_disabled():
            return super().forward(*args, **kwargs)


class CompositeEncoderLayer(_FastPathOff, nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` that always runs its composite (sliced) path."""


class CompositeEncoder(_FastPathOff, nn.TransformerEncoder):
    """``nn.TransformerEncoder`` that never builds nested tensors or calls the fused layer kernel."""


#: torch.nn types whose instances QAG re-classes to their composite path (parameters unchanged).
COMPOSITE_CLASSES: dict[type, type] = {
    nn.TransformerEncoderLayer: CompositeEncoderLayer,
    nn.TransformerEncoder: CompositeEncoder,
}
