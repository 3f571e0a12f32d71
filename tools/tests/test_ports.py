"""Ports for test stations: free, distinct, and out of the kernel's client-port range."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from station_tools.ports import EPHEMERAL_RANGE, LOWEST, free_ports, port_in_use


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = free_ports(40)

    assert len(set(ports)) == 40
    assert all(LOWEST <= port < first_ephemeral for port in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_with_a_listener_is_in_use() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert port_in_use(listener.getsockname()[1])


def time_wait_port() -> int:
    """A port whose only use is a connection in TIME_WAIT on the server's side (as a restart
    finds it after Prometheus scraped the stopped service): the server closes first.

    The listener sets ``SO_REUSEADDR`` as uvicorn and mosquitto do; the connections it accepts
    inherit it, and Linux lets a new ``SO_REUSEADDR`` bind share the port only with those."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port: int = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    server, _ = listener.accept()
    listener.close()
    server.close()  # the active close: the server side goes to TIME_WAIT
    time.sleep(0.05)
    client.close()
    return port


def time_wait_on(port: int) -> bool:
    """A TIME_WAIT connection with ``port`` as its local port (``/proc/net/tcp``, state 06)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if int(local.split(":")[1], 16) == port and state == "06":
            return True
    return False


def test_a_port_held_only_in_time_wait_is_free_and_a_server_binds_it() -> None:
    port = time_wait_port()
    assert time_wait_on(port)
    with socket.socket() as plain:
        refused = plain.connect_ex(("127.0.0.1", port)) != 0
    assert refused, "nothing listens there"
    with socket.socket() as plain, contextlib.suppress(OSError):
        plain.bind(("127.0.0.1", port))
        raise AssertionError("a bind without SO_REUSEADDR (the old check) is refused")

    assert not port_in_use(port)
    with socket.socket() as server:  # as uvicorn binds
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        assert port_in_use(port), "a listener is still refused"
