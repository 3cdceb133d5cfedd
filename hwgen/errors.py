"""The exception types the CLI turns into one clean ``error: ...`` line and
an exit code (docs/cli.md, "Exit codes")."""

__all__ = ["HwgenError", "ArtifactError", "VerificationError", "NotInstalledError", "EXIT_OK"]

#: the exit code of a command that succeeded
EXIT_OK = 0


class HwgenError(Exception):
    """A user-facing failure: bad input or usage, missing tool or dataset,
    failed check.

    The CLI prints ``hwgen: error: <message>`` and exits with the class's
    :attr:`exit_code`; it never shows a traceback for this class.
    """
    #: 2: a usage error or bad input (what argparse uses too)
    exit_code = 2


class ArtifactError(HwgenError):
    """A model artifact is missing, corrupt, hand-edited inconsistently or invalid."""


class VerificationError(HwgenError):
    """The RTL disagrees with the golden reference: a simulation mismatch, or
    a proof that found a counterexample."""
    exit_code = 1


class NotInstalledError(HwgenError):
    """A tool, package, cell library or dataset that the command needs is not
    installed (or hwgen's own package data is missing)."""
    exit_code = 3
