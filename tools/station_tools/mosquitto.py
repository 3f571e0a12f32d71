"""A mosquitto broker run as a child process (the embedded broker of ``station up``).

Not an in-process Python broker: the station relies on MQTT v5 shared subscriptions,
keep-alive enforcement (the last will of a hung collector) and per-client retained
semantics, which only a real broker gets right. Tests use the same class so that they can
kill, stop and restart the broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from station_protocol import channels
from station_protocol.bridging import collector_link
from station_protocol.channels import Z2M_ROOT
from station_runtime.bus import BrokerAddress
from station_tools import children
from station_tools.ports import free_port, wait_for_port

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError("mosquitto is not installed (apt-get install -y mosquitto)")


@dataclass
class Mosquitto(children.Started):
    """``with Mosquitto() as broker``: a private broker on a free loopback port."""

    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    persistence: bool = True
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self._dir / "mosquitto.log"

    @property
    def _dir(self) -> Path:
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="station-mosquitto-")
            self.data_dir = Path(self._tmp.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self._dir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
            # Without it Nagle's algorithm holds small packets for ~40 ms: a bulletin due
            # within 100 ms of a disconnect cannot afford two of those waits.
            "set_tcp_nodelay true",
            self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> Mosquitto:
        conf = self._dir / "mosquitto.conf"
        conf.write_text(self.config())
        binary = mosquitto_binary()
        with children.spawning():
            self.process = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        if not wait_for_port(self.port, 10):
            self.stop()
            raise RuntimeError(f"mosquitto did not listen on {self.port}: see {self.log_file}")
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), saving retained messages and sessions."""
        if self.process is None:
            return
        children.terminate(self.process, 5)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            children.kill(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def collector_bridge(
    charger: str,
    station: BrokerAddress,
    client_id: str,
    zigbee_root: str = Z2M_ROOT,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """mosquitto configuration that bridges a collector's own broker to the station broker.

    The topics are the contracts' (:func:`station_protocol.bridging.collector_link`). MQTT
    v5 on the bridge keeps response topics and correlation data. ``cleansession false`` and
    a fixed remote client id keep the station broker's queue for this charger while the
    link is down, and the collector's broker queues what goes out (``max_queued_messages``).
    The bridge announces itself on the charger's link topic on both brokers.
    """
    lines = [
        f"connection station-{charger}",
        f"address {station.host}:{station.port}",
        "bridge_protocol_version mqttv50",
        f"remote_clientid bridge-{charger}",
        "cleansession false",
        "try_private true",
        "restart_timeout 1 10",
        "keepalive_interval 5",
        "notifications true",
        f"notification_topic {channels.COLLECTOR_LINK.topic(charger=charger)}",
    ]
    if username:
        lines.append(f"remote_username {username}")
    if password:
        lines.append(f"remote_password {password}")
    lines += [topic.line() for topic in collector_link(charger, client_id, zigbee_root)]
    return "\n".join(lines) + "\n"
