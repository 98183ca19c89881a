"""The one exception type that turns into a one-line message and exit status 2."""


class UsageError(Exception):
    """Bad input from the user: the message names the bad value and how to fix it.

    `python -m kerastransfer.run` prints it as one line, without a traceback, and exits 2.
    """


class StudyStopped(Exception):
    """A run failed and --on_failure=stop ended the study: one line, exit status 1.

    Not bad input: the command was right but training went wrong (e.g. a diverging loss).
    """
