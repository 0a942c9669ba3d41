"""Errors a user can act on. Each prints as one line; the CLI and the plugin never show their tracebacks."""


class HarnessError(Exception):
    """Something outside the implementations under test went wrong: the lab, an image, an option."""


class ConfigError(HarnessError):
    """Bad input: names the file (or option) and the field so the user can fix it without reading code."""

    def __init__(self, where: str, field: str, problem: str):
        super().__init__(f"{where}: {field}: {problem}")
        self.where, self.field, self.problem = where, field, problem


class LabTimeout(HarnessError):
    """A wait ran out. The message always says what was being waited for."""


class DaemonExited(HarnessError):
    """A daemon under test died while the case still needed it."""


class CaptureError(HarnessError):
    """A capture cannot back a verdict: missing, empty, damaged, or tcpdump lost packets. A check that something
    is absent from it would pass on nothing, so the cell is broken instead."""
