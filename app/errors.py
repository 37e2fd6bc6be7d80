"""The one exception tree of voiceprobe.

Every error the project raises on purpose derives from :class:`VoiceprobeError`. Messages
are one line, name the thing that is wrong, and never contain a secret.
"""

from __future__ import annotations


class VoiceprobeError(Exception):
    """Base of every voiceprobe error. ``str(err)`` is a one-line, user-facing reason."""


class ConfigError(VoiceprobeError):
    """A profile, scenario, setting or command-line value is invalid.

    Attributes:
        path: the file (or source) the bad value came from, if any.
        field: the dotted field name that is wrong, if known.
        problem: the message without the ``path:`` and ``field:`` prefixes (for a caller
            that names the place in its own words).
    """

    def __init__(self, message: str, path: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.field = field
        self.problem = message
        where = ""
        if path:
            where = f"{path}: "
        if field:
            where += f"{field}: "
        super().__init__(f"{where}{message}")


class AudioFormatError(ConfigError):
    """An audio file or buffer has a format voiceprobe cannot use."""


class AudioDeviceError(VoiceprobeError):
    """An audio device is missing, busy, or refuses the requested format.

    Attributes:
        device: the device name or index.
        host_api: the PortAudio host API, if known.
    """

    def __init__(
        self, message: str, device: str | int | None = None, host_api: str | None = None
    ) -> None:
        self.device = device
        self.host_api = host_api
        super().__init__(message)


class MissingKeyError(ConfigError):
    """No API key is configured for a provider that needs one."""


class ProviderError(VoiceprobeError):
    """The realtime provider reported an error or the connection failed.

    Attributes:
        code: the provider's error code (e.g. ``session_expired``) or a local one.
        retryable: whether reconnecting may help.
    """

    def __init__(self, message: str, code: str = "provider_error", retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class ToolError(VoiceprobeError):
    """A tool call failed (timeout, HTTP error, ceiling reached)."""


class StoreError(VoiceprobeError):
    """The session store could not be read or written."""


class SipError(VoiceprobeError):
    """A SIP registration or call failed.

    Attributes:
        status: the SIP status code, if any (e.g. 401, 486).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)
