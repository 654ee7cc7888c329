"""The repository stands alone: a clone in an empty folder, with nothing beside it, passes the
connector tests, which read the vendored API models and the sandbox fixtures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def checkout_top() -> Path | None:
    """The top of the git checkout these tests run from, or None when they do not run from one."""
    if shutil.which("git") is None:
        return None
    try:
        top = Path(git("rev-parse", "--show-toplevel", cwd=ROOT)).resolve()
    except subprocess.CalledProcessError:
        return None
    # Tests unpacked inside some other repository are not a checkout of this one.
    return top if top == ROOT else None


def test_a_clone_alone_passes_the_connector_tests(tmp_path: Path) -> None:
    if checkout_top() is None:
        pytest.skip("not running from a git checkout of the project: there is no repository to clone")
    clone = tmp_path / "returns-router"
    git("clone", "--quiet", str(ROOT), str(clone), cwd=tmp_path)
    assert git("rev-parse", "HEAD", cwd=clone) == git("rev-parse", "HEAD", cwd=ROOT)
    assert [path.name for path in tmp_path.iterdir()] == [clone.name]  # nothing beside it to lean on
    # Installed dependencies are not the repository's files: the interpreter (with its packages) is
    # this one, and Prism comes from this checkout's `npm ci`, when it has run.
    prism_installed = (ROOT / "node_modules").is_dir()
    if prism_installed:
        (clone / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(clone)}

    # The clone's own code, not this checkout's, is what its tests import.
    imported = subprocess.run(
        [sys.executable, "-c", "import app, tests; print(app.__file__); print(tests.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert [Path(path).is_relative_to(clone) for path in imported] == [True, True], imported

    run = subprocess.run(
        # In this one process: it runs inside a test process already.
        [sys.executable, "-m", "pytest", "tests/connectors", "-rs", "-p", "no:cacheprovider", "-n", "0"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    summary = run.stdout.strip().splitlines()[-1]  # "210 passed in 20.1s"
    assert re.search(r"\b[1-9]\d* passed\b", summary), report
    if prism_installed:
        # Nothing skipped for a file the clone lacks (the Prism test skips only without Prism).
        assert "skipped" not in summary, report
