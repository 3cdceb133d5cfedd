"""The one exception type the CLI turns into a clean ``error: ...`` message."""


class HwgenError(Exception):
    """A user-facing failure: bad input, missing tool or dataset, failed check.

    The CLI prints ``error: <message>`` and exits non-zero; it never shows a
    traceback for this class.
    """


class ArtifactError(HwgenError):
    """A model artifact is missing, corrupt, hand-edited inconsistently or invalid."""
