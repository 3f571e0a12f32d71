"""How the tests and benchmarks start a real browser: the system's Chromium, headless.

The Debian ``chromium`` package (``tools/run`` installs it), driven by Playwright with its
executable path pointed at it: no browser is ever downloaded. The flags keep it from
reaching out to the internet (updates, sync, QUIC) and let it run as root in a container.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
