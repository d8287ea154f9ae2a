"""HQNAS: joint architecture + quantization search with weight-sharing and bit-sharing (see README)."""

from . import spaces as _spaces  # noqa: F401  (registers the built-in spaces)
from .api import NasResult, nas
from .config import NasConfig
from .space import Arch, SpaceError, SpaceSpec, StageSpec, get_space, list_spaces, register_space
from .store import read_nas_config
from .supernet import Subnet, Supernet, random_subnet, uniform_subnet

__all__ = ["NasConfig", "Arch", "SpaceSpec", "StageSpec", "SpaceError", "get_space", "list_spaces", "register_space",
           "Subnet", "Supernet", "random_subnet", "uniform_subnet",
           "nas", "NasResult", "read_nas_config"]
