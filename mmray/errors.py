"""Errors a user can act on. The CLI prints their message as one line, without a traceback."""


class MmrayError(Exception):
    """Base class: the message names the file or key at fault and says what to do."""


class SpecError(MmrayError):
    """A sweep specification is invalid."""


class DataError(MmrayError):
    """Raw data or prepared shards are missing, corrupt or inconsistent."""


class StorageError(MmrayError):
    """A results or cache location (a local folder or a URI such as s3://bucket/prefix) cannot be used."""


class MissingWeightsError(MmrayError):
    """Pretrained weights a configuration names are not on this machine (or cannot read its inputs)."""


class NoResultsError(MmrayError, FileNotFoundError):
    """A folder that holds no finished trial's results (not a sweep's, or one whose first trial has not ended)."""


def validation_problem(error: dict) -> str:
    """One error of a pydantic ValidationError as 'field: message', or the message alone for a rule across
    fields (a model validator), without pydantic's 'Value error, ' prefix."""
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}" if field else message
