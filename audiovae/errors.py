"""The package's own error types: every message names the file or setting and says what to do."""


class AudioVAEError(Exception):
    """Base class for errors a user can act on (bad file, bad setting, missing dependency)."""


class AudioReadError(AudioVAEError):
    """An audio file could not be read or decoded. ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read audio file {self.path}: {reason}")


class MidiReadError(AudioVAEError):
    """A MIDI file could not be parsed or holds nothing usable. ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot use MIDI file {self.path}: {reason}")


class ConfigError(AudioVAEError):
    """A recipe, override or checkpoint config is malformed."""


class ParameterError(AudioVAEError):
    """A DSP or model parameter is out of range."""
