"""One error type per engine family, with a `permanent` flag (as telephony.base does).

Permanent: retrying cannot help (a missing model, a broken voice file); the caller switches
to a fallback engine or reports a configuration problem. Transient: overload, a timeout.
"""


class SpeechError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


class SttError(SpeechError):
    pass


class TtsError(SpeechError):
    pass
