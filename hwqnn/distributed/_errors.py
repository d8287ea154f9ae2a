"""Errors of scale-out: a process group that cannot work as launched, and a study storage out of reach."""

from __future__ import annotations

from ..errors import HwqnnError


class DistributedError(HwqnnError):
    """Ranks that disagree (config, data), or a world size that cannot run this configuration."""


class StudyError(HwqnnError):
    """A shared study that cannot be opened or joined: unreachable storage, or workers with other settings."""


__all__ = ["DistributedError", "StudyError"]
