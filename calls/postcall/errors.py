"""Errors a stage raises, with the `permanent` flag the speech engines use too."""


class StageError(Exception):
    """Transient by default: the task retries with backoff. Permanent: the stage fails at once."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


class StageSkipped(Exception):
    """Nothing to do (no recording, no schema): the stage is marked skipped with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
