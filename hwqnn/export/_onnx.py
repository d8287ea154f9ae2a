"""Lazy imports of the optional export dependencies, with an install hint when they are missing."""

from __future__ import annotations

from ..errors import ExportError

INSTALL_HINT = "pip install 'hwqnn[export]'"


def import_onnx():
    """The ``onnx`` module, or ExportError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the 'onnx' package, which is not installed ({exc}); "
                          f"install it with: {INSTALL_HINT}") from None
    return onnx


def import_onnxruntime():
    """The ``onnxruntime`` module, or ExportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError(f"checking the export needs the 'onnxruntime' package, which is not installed ({exc}); "
                          f"install it with: {INSTALL_HINT}, or pass verify=False") from None
    return onnxruntime
