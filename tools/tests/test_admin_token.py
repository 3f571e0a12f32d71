"""Central's admin token on the one-machine station: made once, kept private, found again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from station_tools.admin_token import (
    ADMIN_TOKEN_ENV,
    AdminTokenError,
    central_admin_token,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_token_is_made_once_private_and_read_again(tmp_path: Path) -> None:
    central = tmp_path / "station" / "central"
    old_umask = os.umask(0o002)
    try:
        first = central_admin_token(central, environ={})
    finally:
        os.umask(old_umask)
    assert first.file == central / "admin-token"
    assert mode(first.file) == 0o600
    assert len(first.value) >= 32
    again = central_admin_token(central, environ={})
    assert again == first


def test_a_token_in_the_environment_wins_and_no_file_is_written(tmp_path: Path) -> None:
    token = central_admin_token(tmp_path, environ={ADMIN_TOKEN_ENV: "a-token-set-by-hand-0123"})
    assert token.value == "a-token-set-by-hand-0123"
    assert token.file is None
    assert not (tmp_path / "admin-token").exists()
    assert token.header() == f'"Authorization: Bearer ${ADMIN_TOKEN_ENV}"'


def test_a_loosened_file_is_tightened_and_a_short_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("a-token-restored-from-a-backup\n")
    path.chmod(0o644)
    assert central_admin_token(tmp_path, environ={}).value == "a-token-restored-from-a-backup"
    assert mode(path) == 0o600
    path.write_text("short\n")
    with pytest.raises(AdminTokenError, match="delete the file"):
        central_admin_token(tmp_path, environ={})


def test_the_curl_header_reads_the_file_even_from_a_path_with_a_space(tmp_path: Path) -> None:
    token = central_admin_token(tmp_path / "my station" / "central", environ={})
    header = subprocess.run(
        ["bash", "-c", f"printf %s {token.header()}"], capture_output=True, text=True, check=True
    ).stdout
    assert header == f"Authorization: Bearer {token.value}"
