"""User-facing errors: the CLI prints these as one line and exits non-zero, without a traceback."""


class UserError(Exception):
    """Something the user can fix: bad input file, wrong option, missing tool."""

    exit_code = 2
