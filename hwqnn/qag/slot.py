"""QuantSlot: the point where one tensor (a layer's weight, or its input activation) is quantized.

A slot is in one of three modes:

* ``float``: bypass, returns its input unchanged;
* ``search``: holds scheme logits ``alpha`` (QSS) and a continuous bitwidth ``b~`` (QPL); the output is
  the probability-weighted mix of every candidate scheme's quantization at ``b~``, so the layer still
  runs one conv/matmul on the mixed tensor. With ``single_path`` (the sampled mode) each training
  step quantizes once, with one scheme drawn from the probabilities at ``b~`` rounded stochastically,
  and gets an unbiased estimate of the mixture's gradient (:class:`SampledPath`); eval mode runs the
  argmax scheme at ``b~`` rounded to the nearest integer (a deployable network, and one it trained);
* ``fixed``: one scheme at one integer bitwidth (a finalized policy).

:meth:`QuantSlot.restrict` narrows a slot to what a target runs natively (see :mod:`hwqnn.deployment`):
schemes with no deployable bits get probability 0, each scheme is evaluated at ``b~`` clamped to its
own deployable bits, and the cost candidates are priced as the target's runtime runs them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..deployment import price_tensor
from ..errors import HwqnnError, SchemeError
from ..quantizers import COMPUTE_KINDS, MAX_BITS, MIN_BITS, create_scheme, list_schemes

MODES = ("float", "search", "fixed")


class SampledPath(torch.autograd.Function):
    """``q`` forward, where ``q = Q(x)`` is one path drawn with probability ``w``; the gradient ``<dL/dq, q - x>``
    goes to ``log w``.

    Summed over the draws, ``E[(q - x) grad log w] = grad sum_k w_k (q_k - x) = grad sum_k w_k q_k``: the
    mixture's gradient, without bias, from one quantization instead of every one (the input ``x`` is a
    control variate, exact because ``sum_k grad w_k = 0``). Subtracting it matters: a layer followed by
    BatchNorm is invariant to the scale of its input, so ``<dL/dq, q>`` alone is about 0 and carries no signal,
    while ``<dL/dq, q - x>`` is the first-order loss of this path's quantization noise.
    """

    @staticmethod
    def forward(ctx, q: Tensor, x: Tensor, log_w: Tensor) -> Tensor:
        ctx.save_for_backward(q, x)
        return q.view_as(q)

    @staticmethod
    def backward(ctx, grad: Tensor):
        q, x = ctx.saved_tensors
        grad_log_w = None
        if ctx.needs_input_grad[2]:
            g = grad.reshape(-1)
            grad_log_w = (torch.dot(g, q.reshape(-1)) - torch.dot(g, x.reshape(-1))).reshape(())
        return grad, None, grad_log_w


class SchemeLogits(nn.Module):
    """Scheme logits ``alpha``; one instance per slot, or one object shared by many slots (model-wide)."""

    def __init__(self, num_schemes: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(num_schemes))


class QuantSlot(nn.Module):
    """Quantizes one tensor; see the module docstring for its modes.

    Args:
        role: ``"weight"`` or ``"activation"``.
        channels: per-channel scales along ``channel_axis`` (weights), or None.
        schemes: candidate scheme names (default: every registered scheme).
        bits_range: ``(b_min, b_max)`` for the continuous bitwidth in search mode.
    """

    def __init__(
        self,
        role: str,
        channels: int | None = None,
        channel_axis: int = 0,
        schemes: Sequence[str] | None = None,
        bits_range: tuple[int, int] = (2, 8),
        init_bits: float | None = None,
    ):
        super().__init__()
        names = list(schemes) if schemes is not None else list_schemes()
        if not names:
            raise SchemeError("a QuantSlot needs at least one candidate scheme")
        b_min, b_max = bits_range
        if not (MIN_BITS <= b_min <= b_max <= MAX_BITS):
            raise SchemeError(f"bits_range must satisfy {MIN_BITS} <= b_min <= b_max <= {MAX_BITS}, got {bits_range}")
        self.role = role
        self.channels = channels
        self.scheme_names = names
        self.bits_range = (int(b_min), int(b_max))
        self.candidates = nn.ModuleDict(
            {n: create_scheme(n, role=role, channels=channels, channel_axis=channel_axis) for n in names})
        self.logits: SchemeLogits = SchemeLogits(len(names))
        self.bits = nn.Parameter(torch.tensor(float(init_bits if init_bits is not None else b_max)))
        self.mode = "float"
        self.temperature = 1.0
        self.gumbel = False
        self.single_path = False
        self.fixed_scheme: str | None = None
        self.fixed_bits: int | None = None
        self.pinned_float = False
        #: Deployable bits per scheme on the target, and its deployment spec (None: unrestricted).
        self.allowed_bits: dict[str, tuple[int, ...]] | None = None
        self.deployment = None
        self.op_type: str | None = None

    def restrict(self, allowed_bits: dict[str, tuple[int, ...]], deployment, op_type: str | None = None) -> None:
        """Search only the (scheme, bits) pairs in ``allowed_bits``, priced on ``deployment``'s runtime for a
        layer of ``op_type``."""
        usable = {n: tuple(b) for n, b in allowed_bits.items() if b and n in self.candidates}
        if not usable:
            raise SchemeError(f"{self.role} slot: no candidate scheme is deployable on the target "
                              f"(candidates {self.scheme_names})")
        self.allowed_bits = {n: usable.get(n, ()) for n in self.scheme_names}
        self._mask_cache = None
        self.deployment = deployment
        self.op_type = op_type
        flexible = [b for n, b in usable.items() if self.candidates[n].fixed_bits is None]
        if flexible:
            lo = max(self.bits_range[0], min(min(b) for b in flexible))
            hi = min(self.bits_range[1], max(max(b) for b in flexible))
            self.bits_range = (lo, max(lo, hi))
            with torch.no_grad():
                self.bits.clamp_(*self.bits_range)

    def _mask(self) -> Tensor | None:
        """Which candidates are deployable (cached: the forward of every search step reads it)."""
        if self.allowed_bits is None:
            return None
        cached = getattr(self, "_mask_cache", None)
        if cached is None or cached.numel() != len(self.scheme_names):  # set_fixed may add a scheme
            cached = self._mask_cache = torch.tensor([bool(self.allowed_bits.get(n)) for n in self.scheme_names])
        return cached

    def _masked_alpha(self) -> Tensor:
        alpha = self.logits.alpha
        mask = self._mask()
        return alpha if mask is None else alpha.masked_fill(~mask.to(alpha.device), float("-inf"))

    def scheme_bits(self, name: str, bits):
        """``bits`` clamped to the deployable bits of scheme ``name`` (unchanged when unrestricted)."""
        allowed = self.allowed_bits.get(name) if self.allowed_bits is not None else None
        if not allowed or self.candidates[name].fixed_bits is not None:
            return bits
        if torch.is_tensor(bits):
            return bits.clamp(min(allowed), max(allowed))
        return min(max(int(bits), min(allowed)), max(allowed))

    def freeze_search_parameters(self) -> None:
        """For a slot that is never searched (a join's): its scheme logits and bits become buffers, so no
        optimizer and no architecture-parameter list sees them."""
        for owner, name in ((self.logits, "alpha"), (self, "bits")):
            value = getattr(owner, name).detach().clone()
            delattr(owner, name)
            owner.register_buffer(name, value)

    def pin_float(self) -> None:
        """Keep this slot in float bypass for good (the integer indices of an embedding): mode switches
        leave it float and its cost is float 32 whatever the search holds."""
        self.pinned_float = True
        self.mode = "float"

    # --- mode switches -------------------------------------------------------------------------
    def set_float(self) -> None:
        self.mode = "float"

    def set_search(self) -> None:
        if not self.pinned_float:
            self.mode = "search"

    def set_fixed(self, scheme: str, bits: int) -> None:
        if self.pinned_float:
            return
        if scheme not in self.candidates:
            # A policy may name a scheme outside the search candidates; build it on demand.
            self.candidates[scheme] = create_scheme(scheme, role=self.role, channels=self.channels,
                                                    channel_axis=self.candidate_axis)
            self.scheme_names.append(scheme)
            old = self.logits.alpha.data
            self.logits = SchemeLogits(len(self.scheme_names))
            self.logits.alpha.data[: old.numel()] = old
        self.candidates[scheme].effective_bits(bits)  # validates
        self.mode, self.fixed_scheme, self.fixed_bits = "fixed", scheme, int(bits)

    @property
    def candidate_axis(self) -> int:
        first = next(iter(self.candidates.values()))
        return first.channel_axis

    def share_logits(self, shared: SchemeLogits) -> None:
        """Use ``shared`` (model-wide scheme sharing) instead of this slot's own logits."""
        if shared.alpha.numel() != len(self.scheme_names):
            raise HwqnnError("shared scheme logits must have one entry per candidate scheme")
        self.logits = shared

    # --- search-time quantities ----------------------------------------------------------------
    def continuous_bits(self) -> Tensor:
        """``b~`` clamped to the search range (a straight clamp keeps the gradient inside the range)."""
        return self.bits.clamp(*self.bits_range)

    def probabilities(self) -> Tensor:
        """Scheme probabilities: softmax(alpha / T), or a Gumbel-softmax sample while training with gumbel."""
        alpha = self._masked_alpha()
        if self.gumbel and self.training:
            return F.gumbel_softmax(alpha, tau=self.temperature, hard=False)
        return torch.softmax(alpha / self.temperature, dim=0)

    def scheme_probabilities(self) -> Tensor:
        """``softmax(alpha / T)`` over the deployable candidates: what expected costs and losses weigh by."""
        return torch.softmax(self._masked_alpha() / self.temperature, dim=0)

    def candidate_bits(self) -> Tensor:
        """The bits each candidate quantizes at now ``[S]``: ``b~`` clamped to its deployable bits, or its
        fixed bits (binary, ternary); differentiable in ``b~``."""
        bits = self.continuous_bits()
        return torch.stack([bits.new_tensor(float(m.fixed_bits)) if m.fixed_bits is not None
                            else self.scheme_bits(name, bits) for name, m in self.candidates.items()])

    def cost_candidates(self) -> tuple[Tensor, Tensor, Tensor]:
        """(probabilities [S], compute-kind index [S], effective bits [S]) for the cost models.

        Bit-independent schemes (binary, ternary) contribute their fixed bits; the others ``b~``.
        """
        bits = self.continuous_bits()
        probs = self.scheme_probabilities()
        if self.pinned_float:
            n = len(self.scheme_names)
            return probs, torch.full((n,), COMPUTE_KINDS.index("float"), dtype=torch.long), bits.new_full((n,), 32.0)
        rounded = int(round(float(bits.detach())))
        kinds, eff = [], []
        for name, scheme in self.candidates.items():
            if self.allowed_bits is not None:
                price = price_tensor(name, self.role, self.scheme_bits(name, rounded), self.deployment, self.op_type)
                kinds.append(COMPUTE_KINDS.index(price.kind))
                eff.append(self.scheme_bits(name, bits) if self._price_follows_bits(price, rounded)
                           and scheme.fixed_bits is None else bits.new_tensor(float(price.bits)))
                continue
            facts = scheme.hardware(scheme.effective_bits(rounded))
            kinds.append(COMPUTE_KINDS.index(facts.compute_kind))
            eff.append(bits.new_tensor(float(scheme.fixed_bits)) if scheme.fixed_bits is not None else bits)
        return probs, torch.tensor(kinds, dtype=torch.long), torch.stack(eff)

    def _price_follows_bits(self, price, rounded: int) -> bool:
        """Whether the cost model may price this candidate at ``b~`` itself (so the bits keep a cost gradient):
        on a bit-flexible device, or where the container it runs in is the one the execution tables give an
        integer of ``b~`` bits (uniform codes into int4/int8); not where its codes need a wider one (pot)."""
        if price.kind == "float" or price.status not in ("native", "emulated", "unknown"):
            return False
        if self.deployment is None or self.deployment.flexible:
            return True
        widths = sorted({b for f in self.deployment.formats if not f.flexible for b in f.bits})
        return price.kind == "int" and price.bits == next((b for b in widths if b >= rounded), None)

    def argmax_scheme(self) -> str:
        return self.scheme_names[int(self._masked_alpha().detach().argmax())]

    # --- forward -------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "float":
            return x
        if self.mode == "fixed":
            return self.candidates[self.fixed_scheme](x, self.fixed_bits)
        bits = self.continuous_bits()
        if self.single_path:
            if not self.training:  # the network the search would pick now, at the nearest integer bitwidth:
                name = self.argmax_scheme()  # the sampled mode trains integer bitwidths only (never their lerp)
                return self.candidates[name](x, self.scheme_bits(name, int(round(float(bits.detach())))))
            return self._one_sampled_path(x, bits)
        probs = self.probabilities()
        out = None
        for i, (name, scheme) in enumerate(self.candidates.items()):
            if self.allowed_bits is not None and not self.allowed_bits.get(name):
                continue  # probability 0: not deployable on the target
            term = probs[i] * scheme(x, self.scheme_bits(name, bits))
            out = term if out is None else out + term
        return out

    def _one_sampled_path(self, x: Tensor, bits: Tensor) -> Tensor:
        """One quantization: a scheme drawn from the slot's probabilities at a bitwidth drawn by stochastic
        rounding of ``b~``, with an unbiased estimate of the mixture's gradient (see :class:`SampledPath`)."""
        log_p = torch.log_softmax(self._masked_alpha() / self.temperature, dim=0)
        k = int(torch.multinomial(log_p.detach().exp(), 1))
        name = self.scheme_names[k]
        scheme = self.candidates[name]
        log_w = log_p[k]
        if scheme.fixed_bits is not None:  # bit-independent: b~ gets an exact 0 (as in the mixture)
            return SampledPath.apply(scheme(x, scheme.fixed_bits), x, log_w + 0.0 * bits)
        lo, frac = scheme.split_bits(self.scheme_bits(name, bits))
        up = bool(torch.rand(()) < frac.detach())
        log_w = log_w + torch.log(frac if up else 1 - frac)
        return SampledPath.apply(scheme.quantize(x, lo + up), x, log_w)

    def extra_repr(self) -> str:
        if self.pinned_float:
            return f"role={self.role}, pinned float"
        if self.mode == "fixed":
            return f"role={self.role}, fixed={self.fixed_scheme}@{self.fixed_bits}b"
        return f"role={self.role}, mode={self.mode}, candidates={len(self.scheme_names)}"
