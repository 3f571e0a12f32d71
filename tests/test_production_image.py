"""The production image imports every module it ships.

The image (``tools/docker/Dockerfile``) is the workspace installed without the dev group:
``uv sync --frozen --no-dev --all-packages --no-editable``. A module that imports a dev-only
package (pytest, grafana-foundation-sdk, hypothesis, ...) passes every test, since tests run
with the dev group installed, and fails only in the image, the first time it is imported. So
this test installs the workspace the Dockerfile's way (its own ``uv sync`` line, read from
the Dockerfile, with every member rebuilt as in a fresh image rather than taken from uv's
cache) into a fresh virtualenv of a temporary directory, and there imports every module of
every installed ``station-*`` distribution (``pkgutil.walk_packages`` over each
distribution's top-level packages, so a new workspace member is checked without naming it
here). The modules must be the installed copies, not the source tree.

Four modules of ``station_tools`` (shipped too: ``--all-packages``) are build and test tools
that the image never runs; they may fail to import, but only for want of the one dev package
named in :data:`DEV_ONLY`, and the test says so if one of them starts to import (drop it
from the list then):

* ``station_tools.testing`` is the rig's pytest plugin (entry point ``pytest11``): pytest is
  what loads it, and its fixtures are pytest objects at module level.
* ``station_tools.catalogue.dashboard`` builds the Grafana fault board at build time
  (``python -m station_tools.catalogue``) with ``grafana-foundation-sdk``; the whole module is
  the SDK's builders and models, down to its constants, so it cannot import the SDK lazily.
  The rest of ``station_tools.catalogue`` imports it only when it renders the board, and
  imports in the image.
* ``station_tools.hostile`` and ``station_tools.hostile_rest`` are the hostile-input fuzzers
  of the end-to-end tests and ``tools/bench/fuzz.py``: property-based testing is what they
  are, with hypothesis and schemathesis from their first line. The checks they share
  (``station_tools.hostile_checks``) import in the image.

Alembic's ``migrations`` directories are not packages (no ``__init__.py``): alembic loads
them from their files, so they are not imported here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "tools/docker/Dockerfile"

DEV_ONLY = {
    "station_tools.testing": "pytest",
    "station_tools.catalogue.dashboard": "grafana_foundation_sdk",
    "station_tools.hostile": "hypothesis",
    "station_tools.hostile_rest": "schemathesis",
}
"""Module -> the only missing package it may fail on in the image (see the module docstring)."""

PROBE = r"""
import importlib
import importlib.metadata
import json
import pkgutil
import sys
import traceback

def name_of(dist):
    return dist.metadata["Name"].lower().replace("_", "-")

def top_level(dist):
    return sorted(
        {f.parts[0] for f in dist.files or () if len(f.parts) == 2 and f.parts[1] == "__init__.py"}
    )

distributions = list(importlib.metadata.distributions())
installed = sorted(name_of(dist) for dist in distributions)
packages = {name_of(d): top_level(d) for d in distributions if name_of(d).startswith("station-")}

failures = {}

def failed(name):
    kind, error, _ = sys.exc_info()
    failures[name] = {
        "error": "".join(traceback.format_exception_only(kind, error)).strip(),
        "missing": error.name if isinstance(error, ModuleNotFoundError) else None,
    }

modules = []
for package in sorted({p for tops in packages.values() for p in tops}):
    try:
        root = importlib.import_module(package)
    except BaseException:
        failed(package)
        continue
    modules.append(package)
    modules += [info.name for info in pkgutil.walk_packages(root.__path__, package + ".", failed)]

files = {}
for name in modules:
    if name in failures:
        continue
    try:
        module = importlib.import_module(name)
    except BaseException:
        failed(name)
    else:
        files[name] = getattr(module, "__file__", None)

json.dump(
    {"installed": installed, "packages": packages, "files": files, "failures": failures},
    sys.stdout,
)
"""


def dockerfile_sync() -> list[str]:
    """The ``uv sync`` arguments of the Dockerfile's build stage."""
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    syncs = [line.removeprefix("RUN ") for line in lines if line.startswith("RUN uv sync")]
    assert len(syncs) == 1, f"one `RUN uv sync` expected in {DOCKERFILE}: {syncs}"
    command = shlex.split(syncs[0])
    assert "--no-dev" in command, command
    return command[1:]


def workspace_members() -> set[str]:
    """The project names of the uv workspace's members."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = set()
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for member in REPO.glob(pattern):
            pyproject = member / "pyproject.toml"
            if pyproject.is_file():
                project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
                names.add(project["name"].lower().replace("_", "-"))
    return names


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=480, check=False
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the probe found in a virtualenv installed as the image is."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to install the workspace as the image does"
    where = tmp_path_factory.mktemp("image")
    venv = where / "venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}

    created = run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], env, where)
    assert created.returncode == 0, created.stderr
    # uv reuses the wheel it built of a workspace member until its pyproject.toml changes, so
    # without --reinstall-package the image here could hold yesterday's code
    rebuild = [arg for name in sorted(workspace_members()) for arg in ("--reinstall-package", name)]
    synced = run([uv, *dockerfile_sync(), *rebuild], env, REPO)
    assert synced.returncode == 0, synced.stdout + synced.stderr

    # -I: isolated, so neither the working directory nor PYTHONPATH can supply a module
    probed = run([str(venv / "bin/python"), "-I", "-c", PROBE], env, where)
    assert probed.returncode == 0, probed.stdout + probed.stderr
    found: dict[str, Any] = json.loads(probed.stdout)
    found["venv"] = str(venv)
    return found


@pytest.mark.timeout(600)
def test_the_image_installs_every_workspace_member_and_no_dev_package(
    image: dict[str, Any],
) -> None:
    assert set(image["packages"]) == workspace_members()
    assert "station-tools" in image["packages"]
    assert {"pytest", "grafana-foundation-sdk", "hypothesis", "mypy"}.isdisjoint(image["installed"])


@pytest.mark.timeout(600)
def test_every_shipped_module_imports_in_the_image(image: dict[str, Any]) -> None:
    failures: dict[str, dict[str, Any]] = image["failures"]
    files: dict[str, str | None] = image["files"]

    unexpected = {
        name: failure["error"]
        for name, failure in failures.items()
        if DEV_ONLY.get(name) is None or failure["missing"] != DEV_ONLY[name]
    }
    assert not unexpected, "modules the image ships but cannot import:\n" + "\n".join(
        f"  {name}: {error}" for name, error in sorted(unexpected.items())
    )
    now_import = sorted(set(DEV_ONLY) & set(files))
    assert not now_import, f"these import in the image now, drop them from DEV_ONLY: {now_import}"
    missing = sorted(set(DEV_ONLY) - set(failures))
    assert not missing, f"DEV_ONLY names modules the image does not ship: {missing}"

    tops = {top for packages in image["packages"].values() for top in packages}
    assert {name.split(".")[0] for name in files} == tops
    assert {
        "station_protocol.catalogue",
        "station_faults.main",
        "station_tools.catalogue.generate",
        "station_tools.catalogue.rules",
        "station_tools.catalogue.runbook",
    } <= set(files)
    venv = Path(image["venv"]).resolve()
    from_source = [
        name
        for name, file in files.items()
        if file and not Path(file).resolve().is_relative_to(venv)
    ]
    assert not from_source, f"imported from outside the image's virtualenv: {from_source}"
