"""Errors a user can cause. The CLI prints ``str(error)`` as one line and exits 2."""


class OltrError(Exception):
    """A user-caused error whose message says what is wrong and how to fix it."""


class ConfigError(OltrError):
    """A config file, key, value or command-line override is invalid."""


class DataError(OltrError):
    """A data root, split file, split line or image is missing or malformed."""


class CheckpointError(OltrError):
    """A checkpoint is missing, corrupt, or from an incompatible run."""


class SetupError(OltrError):
    """The environment cannot do what was asked (e.g. an optional package that is not installed)."""


class OutputError(OltrError):
    """A file or directory of a run cannot be written (read-only, full disk, a file in the way...)."""
