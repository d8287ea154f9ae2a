"""GEMMs hidden inside compound calls (attention, recurrent layers, einsum), as plain matmul/linear rows.

A fused call such as ``F.multi_head_attention_forward`` or ``torch.gru`` runs several GEMMs in one
kernel. hwqnn's QAG replaces each of them by an equivalent chain of ``F.linear`` / ``matmul`` calls with
a QuantSlot on every operand; the functions here describe that chain (names, operand shapes, calls)
so that ``extract_workload`` on the eager float model lists exactly the rows QAG records. QAG executes
the same layouts, and tests check that both agree row for row.

Layouts (one place, used by both sides):

* attention runs on ``[L, N, E]`` inputs; projections are ``F.linear`` on ``[L, N, E]``; ``qk`` is
  ``q [N, H, L, D] @ k^T [N, H, D, S]`` and ``av`` is ``attn [N, H, L, S] @ v [N, H, S, D]``;
* a recurrent layer applies its input GEMM ``ih`` once to the whole ``[T, N, I]`` sequence and its
  hidden GEMM ``hh`` (and an LSTM projection ``hr``) once per time step on ``[N, H]``;
* a two-operand einsum that contracts an index becomes one matmul ``[*batch, M, K] @ [*batch, K, N]``
  (the free and contracted indices of each side merged into M, K, N; batch indices kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import WorkloadError


@dataclass(frozen=True)
class GemmCall:
    """One GEMM call: its row name suffix, op type, operand and output shapes, and whether w is a weight."""

    suffix: str
    op_type: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_is_param: bool


# --- einsum ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EinsumPlan:
    """How a two-operand einsum runs as ``[*batch, M, K] @ [*batch, K, N]``.

    ``a_perm``/``b_perm`` order each operand's dimensions as (batch, free, contracted) / (batch,
    contracted, free) after summing the indices that appear in one operand only (``a_sum``/``b_sum``);
    the product ``[B, M, N]`` is reshaped to ``mid_shape`` and permuted by ``out_perm``.
    """

    a_sum: tuple[int, ...]
    b_sum: tuple[int, ...]
    a_perm: tuple[int, ...]
    b_perm: tuple[int, ...]
    a_shape: tuple[int, int, int]
    b_shape: tuple[int, int, int]
    mid_shape: tuple[int, ...]
    out_perm: tuple[int, ...]
    groups: tuple[int, int, int, int] = (0, 0, 0, 0)  # numbers of batch, a-free, contracted, b-free indices


def parse_einsum(equation: str, n_operands: int, ranks: Sequence[int] | None = None) -> tuple[list[str], str]:
    """Operand subscripts and output subscripts of ``equation`` (spaces removed).

    With ``ranks``, an ellipsis becomes explicit letters (right-aligned across operands, as einsum
    broadcasts); without, it is kept as ``.`` characters (enough to tell batch from contracted indices).
    """
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != n_operands:
        raise WorkloadError(f"einsum '{equation}' names {len(inputs)} operands, got {n_operands}")
    if not arrow:  # implicit output: the ellipsis, then the indices seen once, in alphabetical order
        letters = lhs.replace(",", "").replace(".", "")
        out = ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if "..." not in eq or ranks is None:
        return inputs, out
    spans = [rank - (len(sub) - 3) if "..." in sub else 0 for sub, rank in zip(inputs, ranks)]
    pool = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq][: max(spans)]
    expand = [sub.replace("...", "".join(pool[len(pool) - n:] if n else [])) for sub, n in zip(inputs, spans)]
    return expand, out.replace("...", "".join(pool))


def is_einsum_contraction(equation: str, operands: Sequence) -> bool:
    """True for a two-operand einsum that sums over an index both operands share (a real GEMM)."""
    if len(operands) != 2 or not isinstance(equation, str):
        return False
    try:
        (a, b), out = parse_einsum(equation, 2)
    except WorkloadError:
        return False
    a, b, out = (x.replace(".", "") for x in (a, b, out))
    return any(c in b and c not in out for c in set(a)) and len(set(a)) == len(a) and len(set(b)) == len(b)


def plan_einsum(equation: str, a_shape: Sequence[int], b_shape: Sequence[int]) -> EinsumPlan:
    """The matmul plan of a two-operand contraction (see :class:`EinsumPlan`)."""
    (sa, sb), out = parse_einsum(equation, 2, (len(a_shape), len(b_shape)))
    if len(sa) != len(a_shape) or len(sb) != len(b_shape):
        raise WorkloadError(f"einsum '{equation}': subscripts do not match operand ranks {len(a_shape)}, {len(b_shape)}")
    size = {c: max(int(n), size) for c, n, size in ((c, n, 1) for c, n in zip(sa, a_shape))}
    for c, n in zip(sb, b_shape):  # broadcast sizes: the larger of the two
        size[c] = max(int(n), size.get(c, 1))
    a_sum = tuple(i for i, c in enumerate(sa) if c not in sb and c not in out)
    b_sum = tuple(i for i, c in enumerate(sb) if c not in sa and c not in out)
    ka = [c for c in sa if c not in [sa[i] for i in a_sum]]
    kb = [c for c in sb if c not in [sb[i] for i in b_sum]]
    batch = [c for c in out if c in ka and c in kb]
    contracted = [c for c in ka if c in kb and c not in out]
    a_free = [c for c in out if c in ka and c not in kb]
    b_free = [c for c in out if c in kb and c not in ka]

    def prod(chars: list[str]) -> int:
        n = 1
        for c in chars:
            n *= int(size[c])
        return n

    mid = batch + a_free + b_free
    batch_sizes = tuple(int(size[c]) for c in batch)
    return EinsumPlan(
        a_sum=a_sum, b_sum=b_sum,
        a_perm=tuple(ka.index(c) for c in batch + a_free + contracted),
        b_perm=tuple(kb.index(c) for c in batch + contracted + b_free),
        a_shape=(*batch_sizes, prod(a_free), prod(contracted)),
        b_shape=(*batch_sizes, prod(contracted), prod(b_free)),
        mid_shape=tuple(int(size[c]) for c in mid),
        out_perm=tuple(mid.index(c) for c in out),
        groups=(len(batch), len(a_free), len(contracted), len(b_free)),
    )


def einsum_gemm(plan: EinsumPlan, weight_is_param: bool = False) -> GemmCall:
    """The one (batched) matmul of an einsum plan."""
    out = (*plan.a_shape[:-1], plan.b_shape[-1])
    return GemmCall("", "matmul", plan.a_shape, plan.b_shape, out, weight_is_param)


# --- attention -------------------------------------------------------------------------------------

def attention_gemms(tgt_len: int, src_len: int, batch: int, embed_dim: int, num_heads: int,
                    kdim: int, vdim: int, add_kv: int = 0) -> list[GemmCall]:
    """The GEMMs of one multi-head attention call on ``[L, N, E]`` inputs, in execution order.

    Query, key and value are projected separately (a packed ``in_proj_weight`` is used as its three
    row blocks, so Q, K and V each get their own weight slot). ``add_kv`` extra key/value positions
    come from ``bias_k``/``bias_v`` and ``add_zero_attn``.
    """
    L, S, N, E, H = tgt_len, src_len, batch, embed_dim, num_heads
    D = E // H
    calls = [GemmCall("q_proj", "linear", (L, N, E), (E, E), (L, N, E), True),
             GemmCall("k_proj", "linear", (S, N, kdim), (E, kdim), (S, N, E), True),
             GemmCall("v_proj", "linear", (S, N, vdim), (E, vdim), (S, N, E), True)]
    calls += attention_core_gemms((N, H), L, S + add_kv, D, D)
    calls.append(GemmCall("out_proj", "linear", (L, N, E), (E, E), (L, N, E), True))
    return calls


def attention_core_gemms(batch_dims: Sequence[int], tgt_len: int, src_len: int, head_dim: int,
                         value_dim: int, key_batch: Sequence[int] | None = None,
                         value_batch: Sequence[int] | None = None) -> list[GemmCall]:
    """``qk`` (``q @ k^T``) and ``av`` (``softmax(.) @ v``) of scaled dot-product attention on
    ``[*batch_dims, L, D]`` queries (``[N, H]`` for multi-head attention). Keys and values may have
    fewer (broadcast) batch entries, as in multi-query attention: ``key_batch``/``value_batch``."""
    b, L, S = tuple(int(d) for d in batch_dims), int(tgt_len), int(src_len)
    kb = b if key_batch is None else tuple(int(d) for d in key_batch)
    vb = b if value_batch is None else tuple(int(d) for d in value_batch)
    scores = tuple(torch.broadcast_shapes(b, kb))
    out = tuple(torch.broadcast_shapes(scores, vb))
    return [GemmCall("qk", "matmul", (*b, L, head_dim), (*kb, head_dim, S), (*scores, L, S), False),
            GemmCall("av", "matmul", (*scores, L, S), (*vb, S, value_dim), (*out, L, value_dim), False)]


def attention_scores_elems(batch_dims: Sequence[int], tgt_len: int, src_len: int) -> int:
    """Elements of the attention score matrix (the softmax's input and output each)."""
    n = int(tgt_len) * int(src_len)
    for d in batch_dims:
        n *= int(d)
    return n


# --- recurrent layers ------------------------------------------------------------------------------

#: Gates per recurrent mode (rows of weight_ih / weight_hh per hidden unit).
RNN_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def recurrent_gemms(mode: str, seq_len: int, batch: int, input_size: int, hidden_size: int, num_layers: int,
                    bidirectional: bool, proj_size: int = 0) -> list[GemmCall]:
    """Every GEMM call of a recurrent layer over ``seq_len`` steps, in execution order.

    Row names: ``ih_l{k}``, ``hh_l{k}`` (and ``hr_l{k}`` for an LSTM with ``proj_size``), with a
    ``_reverse`` suffix for the backward direction; ``hh``/``hr`` appear once per time step.
    """
    gates = RNN_GATES[mode] * hidden_size
    out_h = proj_size or hidden_size
    directions = ("", "_reverse") if bidirectional else ("",)
    T, N = seq_len, batch
    calls = []
    for layer in range(num_layers):
        in_size = input_size if layer == 0 else out_h * len(directions)
        for suffix in directions:
            tag = f"l{layer}{suffix}"
            calls.append(GemmCall(f"ih_{tag}", "recurrent", (T, N, in_size), (gates, in_size), (T, N, gates), True))
            for _ in range(T):
                calls.append(GemmCall(f"hh_{tag}", "recurrent", (N, out_h), (gates, out_h), (N, gates), True))
                if proj_size:
                    calls.append(GemmCall(f"hr_{tag}", "recurrent", (N, hidden_size), (proj_size, hidden_size),
                                          (N, proj_size), True))
    return calls
