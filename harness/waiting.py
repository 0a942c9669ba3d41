"""The one way the harness waits: poll with a deadline, and say what it waited for when it gives up."""
import time
from typing import Callable, TypeVar

from harness.errors import LabTimeout

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Call `check` until it returns something truthy; raise LabTimeout naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise LabTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
