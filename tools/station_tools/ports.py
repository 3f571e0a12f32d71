"""Free loopback ports, so tests and the launcher never collide with what already runs."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Collection
from pathlib import Path

LOWEST = 20000
"""Ports handed out are at or above this (well above the well-known and registered ones
services on this machine may use) ..."""
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _first_ephemeral() -> int:
    """... and below the range the kernel takes client ports from, so that a port handed out
    here is not taken by some outgoing connection before our server binds it."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(avoid: Collection[int] = ()) -> int:
    """A loopback port nobody listens on now, not in ``avoid``, outside the ephemeral range.

    Random rather than the kernel's next ephemeral port: two test processes (or a station
    and its tests) asking at the same moment rarely pick the same one, and the bind check
    catches what is taken already.
    """
    top = _first_ephemeral()
    low, high = (LOWEST, top - 1) if top - 1 > LOWEST + 1000 else (1024, top - 1)
    for _ in range(1000):
        port = random.randint(low, high)
        if port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free loopback port in {low}-{high}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not bind ``port`` now, as the station's servers bind it.

    With ``SO_REUSEADDR``, as uvicorn and mosquitto set it: on Linux that still refuses a
    port something listens on (what we must not start over), but not one held only by
    connections in TIME_WAIT, which a restart within a minute of a stop leaves behind
    (Prometheus's scrapes, a browser's requests).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_port(avoid=ports))
    return ports


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """Block until something accepts connections on ``port`` (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False
