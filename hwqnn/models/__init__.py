"""Model zoo: small, download-free models for the default run, benchmarks and QAG tests.

One file per architecture family; importing this package registers every model::

    from hwqnn.models import create_model, list_models, model_spec
    model = create_model("tiny_cnn", num_classes=10)
    spec = model_spec("tiny_cnn")  # spec.input_shape == (1, 8, 8), spec.default_data == "digits"

Your own model needs no registration: ``create_model("package.module:factory", num_classes=10)`` or
``create_model("path/to/file.py:factory")`` imports the factory and builds it (see ``_registry``).
"""

# Importing the model modules registers their models.
from . import branchy_cnn, einsum_attention, functional_cnn, mobilenet, recurrent, resnet, tiny_cnn, vit, vit_mha  # noqa: F401
from ._registry import (
    ModelError,
    ModelSpec,
    UnknownModelError,
    create_model,
    list_models,
    model_spec,
    register_model,
)

__all__ = [
    "ModelError",
    "ModelSpec",
    "UnknownModelError",
    "create_model",
    "list_models",
    "model_spec",
    "register_model",
]
