"""The one exception type for mistakes a user can make.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A bad name, value, file or directory supplied by the user."""


class Interrupted(Exception):
    """The user stopped a command (Ctrl-C); the message says what was kept and how to go on.

    The CLI prints it as one ``interrupted: ...`` line and exits 130 (128 + SIGINT), the code a
    shell gives a process stopped by Ctrl-C.
    """
