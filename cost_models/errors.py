"""Errors raised by cost_models. Every message names what was received, what was expected and the fix.

:class:`UserError` is the root of the one error hierarchy of the project: cost_models owns it (it never
imports hwqnn) and hwqnn's ``HwqnnError`` extends it, so a caller catches every user-facing error of
both packages with ``except UserError``.
"""


class UserError(Exception):
    """Root of every user-facing error of cost_models and hwqnn: a bad input the user can fix."""


class CostModelError(UserError):
    """Base class of every user-facing error raised by cost_models."""


class ProfileError(CostModelError):
    """A hardware profile is missing, malformed or fails validation.

    The message names the file, the field (dotted path) and the problem.
    """

    def __init__(self, problem: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        self.problem = problem
        where = []
        if file:
            where.append(f"profile {file}")
        if field:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class WorkloadError(CostModelError):
    """A model could not be turned into a workload (no quantizable op, bad example input, ...)."""


class PolicyFormatError(CostModelError):
    """A policy passed to the cost models is not understood (bad uniform string, unknown layer, ...)."""


class CalibrationError(CostModelError):
    """Measurements cannot calibrate a profile (no rows for the device, unknown model, bad CSV)."""


class YamlFileError(CostModelError):
    """A YAML input file cannot be read safely: unreadable, too large, not UTF-8, or not valid (strict) YAML.

    ``problem`` is one line without the file name, so callers can re-raise it as their own error class.
    """

    def __init__(self, problem: str, *, file: str):
        self.file = file
        self.problem = problem
        super().__init__(f"{file}: {problem}")
