"""User-facing errors: one line naming the file/id at fault and how to fix it. The CLI prints them.

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


class ClusterError(MemeprobeError):
    """A compute cluster (Ray) failed under a run: a node, worker or object was lost."""
