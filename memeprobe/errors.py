"""User-facing errors: one line naming the file/id at fault and how to fix it. The CLI prints them and exits with
the code :data:`EXIT_CODES` gives each class (the one place exit codes are decided).

Python callers can tell the kinds apart; messages below the CLI name no command-line flags."""


class MemeprobeError(Exception):
    """A user-facing error: the message names the file/id at fault and how to fix it.

    ``option``: the keyword argument (and, dashed, the CLI option) that fixes it, when one does; the CLI
    names it as a hint."""

    def __init__(self, message: str = "", *, option: str | None = None):
        super().__init__(message)
        self.option = option


class DatasetError(MemeprobeError):
    """A dataset file, row or option cannot be read as given."""


class StoreError(MemeprobeError):
    """A feature store is missing, corrupt, or does not hold what was asked for."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock."""


class WeightsError(MemeprobeError):
    """Model weights are missing, refused, or do not match the model they are loaded into."""


class ConfigError(MemeprobeError):
    """A head, featurizer or run configuration is invalid."""


class OutputError(MemeprobeError):
    """An output cannot be written where asked: it would replace an input of the run or a memeprobe file of
    another kind, leave its folder, or the path is not writable."""


class ModelError(MemeprobeError):
    """A model file is missing, is not a memeprobe model, is damaged, or does not fit the data it meets."""


class ReportError(MemeprobeError):
    """A leakage report or clean-id list cannot be read, or does not belong to the data it is used with."""


class ClusterError(MemeprobeError):
    """A compute cluster (Ray) failed under a run: a node, worker or object was lost."""


class Outcome(Exception):
    """Not an error: a command ran to its end and reported what it found (problems, failed rows, an interruption)
    itself; the CLI only exits with the code :data:`EXIT_CODES` gives its class."""


class ProblemsFound(Outcome):
    """``memeprobe store verify`` listed problems."""


class RowsFailed(Outcome):
    """``memeprobe featurize`` completed, but rows failed (listed; marked failed in the store)."""


class Interrupted(Outcome):
    """``memeprobe featurize`` was interrupted (Ctrl-C) after saying what the store kept."""


# The exit code of every outcome of a ``memeprobe`` command, declared once (0 = success). cli.py maps an exception
# raised below it to the code of its class or nearest listed base class (:func:`exit_code`); click's own usage
# errors exit with 2 as well.
EXIT_CODES: dict[type[Exception], int] = {
    ProblemsFound: 1,
    MemeprobeError: 2,  # any error above: one line on stderr naming the fix (and its CLI option), no traceback
    RowsFailed: 3,
    Interrupted: 130,  # 128 + SIGINT, as shells report Ctrl-C
}


def exit_code(error: Exception) -> int:
    """The exit code of ``error`` (a MemeprobeError or an Outcome) from :data:`EXIT_CODES`."""
    return next(EXIT_CODES[cls] for cls in type(error).__mro__ if cls in EXIT_CODES)
