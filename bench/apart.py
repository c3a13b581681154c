"""Our app served by a uvicorn child process on a free loopback port, for a batch of map snapshots.

The report batch draws every zone's map page in Chromium while its process renders the PDFs. Served
from a thread of that process, the app's answers to Chromium (tiles, features, cases) and WeasyPrint
take turns on one GIL; served from a child, they can run on two cores. Measured on this two-core
machine shared with other sessions (load 6-10), it was no faster (17.9 vs 16.9 s) and cost about
110 MiB and 3 s of CPU (the child's own imports), so ``wuye report`` serves in-process; bench/report.py
--apart measures it again.

The child (``python -m bench.apart``) reads the settings as one JSON line on stdin, listens on a
socket it binds itself (no port race), writes the port on stdout and serves until its stdin closes:
when the batch ends, and also when this process dies without cleaning up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from geo.errors import ConfigError
from geo.settings import Settings

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@contextmanager
def served_apart(settings: Settings, *, database: str | None = None) -> Iterator[str]:
    """Serve the app in a child process; yield its base URL; stop the child (and wait for it) on exit.
    ``database`` overrides the URL the settings resolve to, as in :func:`api.app.create_app`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.apart"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        cwd=os.getcwd(),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(settings.model_dump_json() + "\n" + (database or "") + "\n")
        child.stdin.flush()
        port = _read_port(child)
        yield f"http://{HOST}:{port}"
    finally:
        _stop(child)


def _read_port(child: subprocess.Popen[str]) -> int:
    """The port the child listens on (its first line of output), or why it did not start."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline() if child.stdout else ""), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    text = line[0].strip() if line else ""
    if not text.isdigit():
        raise ConfigError(f"the app server process did not start (exit code {child.poll()}, said {text!r})")
    return int(text)


def _stop(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin (it shuts down gracefully), then wait; terminate only if it hangs."""
    try:
        if child.stdin is not None:
            child.stdin.close()
    except OSError:
        pass  # already gone
    try:
        child.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if child.stdout is not None:
        child.stdout.close()


def main() -> None:
    """The child: settings from stdin, serve on a socket of its own until stdin closes."""
    settings = Settings.model_validate_json(sys.stdin.readline())
    database = sys.stdin.readline().strip() or None
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(128)  # connections queue here until the app has started: no polling for readiness
    print(sock.getsockname()[1], flush=True)  # before the imports: the parent goes on meanwhile

    import uvicorn

    from api.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, database=database), log_level="warning", access_log=False)
    )

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
        server.should_exit = True

    threading.Thread(target=watch_parent, name="wuye-apart-parent", daemon=True).start()
    server.run(sockets=[sock])
    # The app has shut down (lifespan: pools closed, escalator stopped). Skip the interpreter's
    # teardown of every module and object (~0.5 s measured) that the batch would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
