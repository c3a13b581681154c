"""A real ``wuye`` server in a subprocess, on a free loopback port, for crowd and fault tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
WUYE = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wuye(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``wuye`` CLI with ``env`` added to ours."""
    return subprocess.run(
        [*WUYE, *args], env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@contextmanager
def serving(env: dict[str, str], *command: str) -> Iterator[str]:
    """``command`` (default ``wuye serve``) in a subprocess on a free port; yield its base URL."""
    port = free_port()
    cmd = list(command) or [*WUYE, "serve"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    if command:
        cmd += ["--log-level", "warning"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a shared, loaded machine can take this long to import the app
        while True:
            try:
                if httpx.get(f"{url}/collections", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def uvicorn_app() -> tuple[str, ...]:
    """The command serving the app factory with uvicorn (settings from the environment)."""
    return (sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory")
