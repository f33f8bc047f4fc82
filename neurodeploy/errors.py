"""User-facing failures.

A `UserError` is a mistake the user can fix (bad file, bad recipe, out-of-range
parameter). The CLI prints its message on one line and exits non-zero, with no
traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input: the message names the file, the problem and the fix."""


class NeurodeployWarning(UserWarning):
    """A result to distrust (an output layer that never spiked, ...), raised with
    `warnings.warn`: a Python user filters or records it as any warning, and the command line
    prints it as `neurodeploy: warning: <message>`."""
