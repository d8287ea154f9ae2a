"""The built-in schemes; importing a module registers its schemes (one file per family).

The import order is the registry order: binary, ternary, uniform, ul2q, pot, zoom, clip, residual.
"""

from . import binary, uniform, ul2q, pot, zoom, clip, residual  # noqa: F401, I001
