"""Central's admin token on the one-machine station: one a person can find and keep.

Central refuses to read its records without the admin token. A random token made afresh at
every start and never shown would lock the station's own operator out of them, so the
launcher keeps one in ``<data dir>/central/admin-token`` (mode 0600, like sync's
``central-token``): made at the first start, read at every later one, so that a ``curl``
line pasted yesterday still works. A token set in ``STATION_CENTRAL_ADMIN_TOKEN`` (as the
chart sets central's) wins, and no file is written.
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ADMIN_TOKEN_ENV = "STATION_CENTRAL_ADMIN_TOKEN"
TOKEN_FILE = "admin-token"
MIN_LENGTH = 16
"""Central refuses a shorter admin token (``station_central.core.config``)."""


class AdminTokenError(Exception):
    """The token file cannot be used; the message says what to do."""


@dataclass(frozen=True)
class AdminToken:
    value: str
    file: Path | None
    """Where it is kept; ``None`` when it comes from ``STATION_CENTRAL_ADMIN_TOKEN``."""

    def header(self) -> str:
        """The ``curl -H`` argument, reading the secret where it is kept (never printed).

        The path is quoted as one shell word: a data dir may hold a space."""
        source = f"$(cat {shlex.quote(str(self.file))})" if self.file else f"${ADMIN_TOKEN_ENV}"
        return f'"Authorization: Bearer {source}"'


def central_admin_token(central_dir: Path, environ: Mapping[str, str] = os.environ) -> AdminToken:
    """The token the environment sets, else the one in ``central_dir``, made if missing."""
    given = environ.get(ADMIN_TOKEN_ENV, "")
    if given:
        return AdminToken(given, None)
    path = central_dir / TOKEN_FILE
    return AdminToken(_read_or_make(path), path)


def _read_or_make(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two launchers racing on one data dir cannot both write a token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the umask
        file.write(token + "\n")
    return token


def _read(path: Path) -> str:
    try:
        path.chmod(0o600)  # a copy restored with looser rights is tightened again
        token = path.read_text().strip()
    except OSError as exc:
        raise AdminTokenError(f"cannot read central's admin token in {path}: {exc}") from None
    if len(token) < MIN_LENGTH:
        raise AdminTokenError(
            f"central's admin token in {path} is shorter than {MIN_LENGTH} characters; "
            "delete the file to have a new one made"
        )
    return token
