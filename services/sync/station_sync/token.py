"""Sync's token for central: the one an operator installed on the station, else the setting.

Central keeps only a token's hash, so a rotated token (``POST /api/v1/stations/<station>/
token``) cannot be fetched by the station: an operator carries it over. Installing it must
not cost the backlog or need an edit of the environment and a restart, so sync keeps an
installed token in ``<data_dir>/central-token`` (mode 0600, written whole or not at all),
which overrides the ``central_token`` setting while it exists, and reads it again before
each batch: the next try after the install uses it. ``PUT /api/v1/sync/central-token`` and
``station sync token`` install it; delete the file to go back to the setting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr

log = logging.getLogger("station.sync.token")

TOKEN_FILE = "central-token"
TOKEN_PATTERN = r"^[\x21-\x7e]{1,512}$"
"""What can travel in an ``Authorization: Bearer`` header: printable ASCII, no spaces."""
_TOKEN = re.compile(TOKEN_PATTERN)


class TokenSource(StrEnum):
    FILE = "file"
    SETTING = "setting"
    NONE = "none"


@dataclass
class CentralToken:
    path: Path
    """``<data_dir>/central-token``."""
    setting: SecretStr | None
    _seen: tuple[int, int, int] | None = None
    """The file's (inode, size, mtime) when it was last read: read again only when it changed."""
    _from_file: str | None = field(default=None, repr=False)

    @classmethod
    def in_dir(cls, data_dir: Path, setting: SecretStr | None) -> CentralToken:
        return cls(data_dir / TOKEN_FILE, setting)

    def current(self) -> str | None:
        """The token to send now: the installed one if there is one, else the setting's."""
        from_file = self._read()
        if from_file is not None:
            return from_file
        return self.setting.get_secret_value() if self.setting is not None else None

    @property
    def source(self) -> TokenSource:
        if self._read() is not None:
            return TokenSource.FILE
        return TokenSource.SETTING if self.setting is not None else TokenSource.NONE

    def install(self, token: str) -> None:
        """Write the token whole (a temporary file renamed over the old one), owner-only."""
        if not _TOKEN.match(token):
            raise ValueError("a token is 1 to 512 printable ASCII characters without spaces")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".central-token.", dir=self.path.parent)
        try:
            os.fchmod(handle, 0o600)
            os.write(handle, token.encode())
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.replace(name, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        log.info("central token installed", extra={"path": str(self.path)})

    def _read(self) -> str | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._from_file = None, None
            return None
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if seen != self._seen:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
            if text and not _TOKEN.match(text):
                log.error("central-token file holds no usable token; using the setting")
                text = ""
            self._seen, self._from_file = seen, text or None
        return self._from_file
