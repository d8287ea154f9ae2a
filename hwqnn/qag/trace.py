"""fx tracing with automatic leaf fallback for submodules that cannot be traced.

A submodule whose forward fx cannot trace (data-dependent control flow, unsupported calls) is marked
as a leaf and tracing starts again; QAG later converts such leaves by module swap inside. User-supplied
leaf modules and auto-wrapped functions are honoured, as in timm's fx helpers.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Iterable

import torch.fx as fx
from torch import nn

from ..errors import ConversionError

log = logging.getLogger(__name__)
MAX_RETRIES = 64


def has_user_hooks(module: nn.Module) -> bool:
    """A module with forward (pre-)hooks stays a call in the graph, so that its hooks keep firing."""
    return bool(module._forward_pre_hooks or module._forward_hooks)


class _FallbackTracer(fx.Tracer):
    def __init__(self, leaf_ids: set[int], leaf_types: tuple[type, ...], autowrap: tuple[Callable, ...]):
        super().__init__(autowrap_functions=autowrap)
        self.leaf_ids = leaf_ids
        self.leaf_types = leaf_types
        self._stack: list[str] = []
        self.failed_at: str | None = None

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return (id(m) in self.leaf_ids or isinstance(m, self.leaf_types) or (bool(qualname) and has_user_hooks(m))
                or super().is_leaf_module(m, qualname))

    def call_module(self, m, forward, args, kwargs):
        qualname = self.path_of_module(m)
        self._stack.append(qualname)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_at is None:  # innermost module first, as the exception unwinds
                self.failed_at = qualname
            raise
        finally:
            self._stack.pop()


def defaults_not_given(model: nn.Module, n_args: int) -> dict[str, object]:
    """The forward's parameters after the first ``n_args`` that have defaults: traced as those constants.

    fx would otherwise make every optional argument a placeholder and trace the ``is not None`` branch,
    which then fails when the argument really is None (``~mask`` on None).
    """
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p.default for p in parameters[n_args:]
            if p.kind in kinds and p.default is not inspect.Parameter.empty}


def trace_with_fallback(
    model: nn.Module,
    leaf_modules: Iterable[type] = (),
    autowrap_functions: Iterable[Callable] = (),
    n_args: int | None = None,
) -> tuple[fx.GraphModule | None, list[str], str | None]:
    """Trace ``model``; returns (graph module or None, names of leaf-fallback submodules, root error).

    With ``n_args`` (the number of example inputs), optional forward arguments beyond them are traced as
    their default values. The graph module is None when the root's own forward cannot be traced; the
    third value then holds the tracing error, so the caller can fall back to module swap or raise a
    ConversionError.
    """
    leaf_ids: set[int] = set()
    fallbacks: list[str] = []
    modules = dict(model.named_modules())
    concrete = defaults_not_given(model, n_args) if n_args is not None else {}
    for _ in range(MAX_RETRIES):
        tracer = _FallbackTracer(leaf_ids, tuple(leaf_modules), tuple(autowrap_functions))
        try:
            graph = tracer.trace(model, concrete_args=concrete or None)
        except Exception as exc:  # fx raises many kinds (TraceError, TypeError, RuntimeError...)
            culprit = tracer.failed_at
            if not culprit or culprit not in modules:
                return None, fallbacks, f"{type(exc).__name__}: {exc}"
            if id(modules[culprit]) in leaf_ids:
                raise ConversionError(f"could not trace '{culprit}' even as a leaf: {exc}") from exc
            leaf_ids.add(id(modules[culprit]))
            fallbacks.append(culprit)
            warnings.warn(
                f"QAG: submodule '{culprit}' ({type(modules[culprit]).__name__}) cannot be traced by torch.fx "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); it is kept as a leaf and its "
                f"Conv/Linear children are converted by module swap", stacklevel=3)
            continue
        return fx.GraphModule(tracer.root, graph, model.__class__.__name__), fallbacks, None
    raise ConversionError(f"gave up tracing {type(model).__name__} after {MAX_RETRIES} leaf fallbacks")
