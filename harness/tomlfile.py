"""Reading a TOML file a user wrote (vendor.toml, an expectations file, an inventory): every way it can be unreadable
is one ConfigError naming the file, never a traceback."""
from __future__ import annotations

import tomllib
from pathlib import Path

from harness.errors import ConfigError


def read_toml(path: Path, missing: str = "not found", folder: str = "is a folder, not a TOML file") -> dict:
    """The file's tables; `missing` and `folder` say what a missing file or a folder in its place means."""
    where = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "(file)", missing) from None
    except IsADirectoryError:
        raise ConfigError(where, "(file)", folder) from None
    except OSError as exc:
        raise ConfigError(where, "(file)", f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(where, "(file)", f"not UTF-8 (byte {exc.start}: {exc.reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, "(syntax)", str(exc)) from None
