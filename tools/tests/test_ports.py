"""Ports for test stations: free, distinct, and out of the kernel's client-port range."""

from __future__ import annotations

import socket

from station_tools.ports import EPHEMERAL_RANGE, LOWEST, free_ports


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = free_ports(40)

    assert len(set(ports)) == 40
    assert all(LOWEST <= port < first_ephemeral for port in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
