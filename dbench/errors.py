"""The one exception type for mistakes a user can make.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A bad name, value, file or directory supplied by the user."""
