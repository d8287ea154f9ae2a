"""``module:attribute`` specs: how a user hands hwqnn their own model or data factory by name.

A spec is ``package.module:factory`` (the module importable from ``sys.path`` or the current directory)
or ``path/to/file.py:factory``. The name a run stores is the spec itself (a file path made absolute), so
whatever rebuilds a model or data set from a run directory resolves it again the same way.

Every failure is one ``error_type`` exception whose message names the spec, the flag and what went wrong,
so the CLI prints one line instead of a traceback from the user's code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import HwqnnError

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_ATTRIBUTE = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_MODULE = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")


def is_factory_spec(text: object) -> bool:
    """True for ``module:attr`` or ``file.py:attr`` (never for a zoo or data set name, which has no colon)."""
    if not isinstance(text, str) or ":" not in text:
        return False
    where, _, attribute = text.rpartition(":")
    return bool(where) and bool(_ATTRIBUTE.match(attribute))


def _split(spec: str, flag: str, error_type: type[HwqnnError]) -> tuple[str, str]:
    if not is_factory_spec(spec):
        raise error_type(f"{flag} {spec!r} is not a factory spec; expected package.module:factory or "
                         "path/to/file.py:factory")
    where, _, attribute = spec.rpartition(":")
    return where, attribute


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def canonical_spec(spec: str) -> str:
    """The spec with a file path made absolute, so a run directory can rebuild it from any directory."""
    where, _, attribute = spec.rpartition(":")
    if _is_file(where):
        return f"{Path(where).expanduser().resolve()}:{attribute}"
    return spec


def short_name(spec: str) -> str:
    """A readable name for run directories and logs: ``net.make`` for ``a/b/net.py:make``, the dotted
    path for ``pkg.mod:make``; only ``[A-Za-z0-9._-]``."""
    where, _, attribute = spec.rpartition(":")
    base = Path(where).stem if _is_file(where) else where
    return safe_name(f"{base}.{attribute}")


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (never empty, never
    only dots, so it cannot name a parent directory)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(text)).strip(".") or "unnamed"
    return cleaned


def _import_file(path_text: str, spec: str, flag: str, error_type: type[HwqnnError]):
    path = Path(path_text).expanduser()
    if not path.is_file():
        what = f"{path_text} is a directory" if path.is_dir() else f"no such file {path_text}"
        raise error_type(f"{flag} {spec}: {what}; expected a Python file, as in path/to/file.py:factory")
    path = path.resolve()
    # One module per file path, so two lookups of the same spec share one module (and its classes).
    name = f"hwqnn_user_{safe_name(path.stem).replace('.', '_').replace('-', '_')}_" \
           f"{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise error_type(f"{flag} {spec}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise error_type(f"cannot import module {str(path)!r} for {flag} {spec}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from exc
    return module


def _import_module(module_name: str, spec: str, flag: str, error_type: type[HwqnnError]):
    if not _MODULE.match(module_name):
        raise error_type(f"{flag} {spec}: {module_name!r} is not a module name; expected package.module:factory "
                         "or path/to/file.py:factory")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # last: the user's modules never shadow installed packages
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise error_type(f"cannot import module {module_name!r} for {flag} {spec}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from exc


def type_phrase(obj: object) -> str:
    """``a str``, ``an int``: the type of ``obj`` with its article, for messages."""
    name = type(obj).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"


def load_factory(spec: str, *, flag: str, error_type: type[HwqnnError] = HwqnnError) -> Callable:
    """Import ``spec``'s module and return its attribute, which must be callable."""
    where, attribute = _split(spec, flag, error_type)
    module = (_import_file(where, spec, flag, error_type) if _is_file(where)
              else _import_module(where, spec, flag, error_type))
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            shown = where if not _is_file(where) else str(Path(where))
            public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            hint = f"; it defines: {', '.join(public[:12])}" if public else ""
            raise error_type(f"module {shown!r} has no attribute {attribute!r} ({flag} {spec}){hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise error_type(f"{flag} {spec}: {attribute!r} is {type_phrase(obj)}, not a callable factory")
    return obj


def accepts_keyword(factory: Callable, name: str) -> bool:
    """Whether ``factory`` can be called with ``name=...`` (a named parameter, or ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # callables without a signature: pass nothing
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
               for p in parameters)


def call_factory(factory: Callable, spec: str, *, flag: str, error_type: type[HwqnnError] = HwqnnError,
                 **kwargs: object):
    """Call ``factory(**kwargs)``; an exception it raises becomes one ``error_type`` naming the spec."""
    try:
        return factory(**kwargs)
    except (Exception, SystemExit) as exc:
        raise error_type(f"{flag} {spec}: the factory raised {type(exc).__name__}: {_one_line(exc)}") from exc
