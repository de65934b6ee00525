"""The one exception type the CLI turns into a clear message and a non-zero exit."""


class MemeprobeError(Exception):
    """A user-facing error: the message names the file/id at fault and how to fix it."""
