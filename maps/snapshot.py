"""Snapshots of map pages in headless Chromium (PNG and PDF), for acceptance review.

One browser process is launched on first use and reused (a launch costs about
0.2 s, a fresh page about 20 ms). Playwright's sync API is bound to the
thread that started it, so the browser lives in one worker thread and every
caller (route, CLI, report code) hands it a job and waits for the result.

Public functions: :func:`render_zone_png`, :func:`render_zone_pdf`,
:func:`render_png`, :func:`render_pdf` and :func:`render_zone_images` (many
zones: one browser context, a few pages at once). Map pages set
``window.wuyeReady = true`` once their data is drawn; rendering waits on
that signal, never on a timer.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal
from urllib.parse import quote, urlencode

from geo.errors import ConfigError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
READY = "() => window.wuyeReady === true || (window.wuye === undefined && document.readyState === 'complete')"
DEFAULT_TIMEOUT_S = 30.0


class SnapshotError(ConfigError):
    """The browser could not render the page (not installed, page error, ready signal never came)."""


class _Renderer:
    """A worker thread owning Playwright and one Chromium; jobs run one at a time."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        self.executable = executable
        self._jobs: queue.Queue[tuple[Callable[[Any], Any], Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[Any], Any], timeout: float) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wuye-snapshot", daemon=True)
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future.result(timeout=timeout + 30)

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS)
        except Exception as e:  # no Chromium: fail every waiting job with the reason
            self._fail_all(SnapshotError(f"cannot start Chromium at {self.executable}: {e}"))
            return
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                try:
                    if not browser.is_connected():
                        browser = pw.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS)
                    future.set_result(job(browser))
                except Exception as e:
                    future.set_exception(e)
        finally:
            browser.close()
            pw.stop()

    def _fail_all(self, error: Exception) -> None:
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(error)

    def close(self) -> None:
        """Stop the browser (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=10)


_renderer = _Renderer()
atexit.register(_renderer.close)


def _load(browser: Any, url: str, width: int, height: int, timeout_s: float) -> Any:
    """A fresh page at ``width``×``height`` with ``url`` drawn (the ready signal seen)."""
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
    errors = _watch(page)
    try:
        _go(page, url, timeout_s, wait_until="load")
        _drawn(page, url, timeout_s, errors)
    except Exception:
        page.close()
        raise
    return page


def _watch(page: Any) -> list[str]:
    """The page's uncaught errors, collected for the message when it does not draw."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _go(page: Any, url: str, timeout_s: float, *, wait_until: str) -> None:
    """Navigate; refuse a page that answers 4xx/5xx (e.g. an unknown zone: no picture of a 404)."""
    try:
        response = page.goto(url, wait_until=wait_until, timeout=timeout_s * 1000)
    except Exception as e:
        raise SnapshotError(f"{url} did not load within {timeout_s:.0f} s: {e}") from e
    if response is not None and response.status >= 400:
        raise SnapshotError(f"{url} answered {response.status}: {response.text()[:200]}", field="url")


def _drawn(page: Any, url: str, timeout_s: float, errors: list[str]) -> None:
    """Wait for the page's ready signal."""
    try:
        page.wait_for_function(READY, timeout=timeout_s * 1000)
    except Exception as e:
        raise SnapshotError(f"{url} did not draw within {timeout_s:.0f} s: {e}; page errors: {errors}") from e


def render_png(url: str, width: int = 1200, height: int = 800, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
    """PNG of the page at ``url`` in a ``width``×``height`` viewport, once it has drawn."""

    def job(browser: Any) -> bytes:
        page = _load(browser, url, width, height, timeout_s)
        try:
            data: bytes = page.screenshot(type="png", full_page=False)
            return data
        finally:
            page.close()

    result: bytes = _renderer.submit(job, timeout_s)
    return result


def render_pdf(url: str, width: int = 1123, height: int = 794, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
    """PDF of the page at ``url``: one page of ``width``×``height`` CSS pixels (default A4 landscape)."""

    def job(browser: Any) -> bytes:
        page = _load(browser, url, width, height, timeout_s)
        try:
            data: bytes = page.pdf(
                width=f"{width}px",
                height=f"{height}px",
                print_background=True,
                margin={"top": "0", "bottom": "0", "left": "0", "right": "0"},
            )
            return data
        finally:
            page.close()

    result: bytes = _renderer.submit(job, timeout_s)
    return result


def zone_url(base_url: str, code: str, *, lang: str = "zh") -> str:
    """The snapshot form of a zone's page (controls hidden; title, legend, scale, north arrow, date kept)."""
    query = urlencode({"snapshot": "true", **({"lang": lang} if lang != "zh" else {})})
    return f"{base_url.rstrip('/')}/maps/zones/{quote(code, safe='')}?{query}"


def render_zone_png(
    base_url: str,
    code: str,
    width: int = 1200,
    height: int = 800,
    *,
    lang: str = "zh",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bytes:
    """PNG of zone ``code``'s map as served at ``base_url`` (e.g. http://127.0.0.1:8000)."""
    return render_png(zone_url(base_url, code, lang=lang), width, height, timeout_s=timeout_s)


def render_zone_pdf(
    base_url: str,
    code: str,
    width: int = 1123,
    height: int = 794,
    *,
    lang: str = "zh",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bytes:
    """PDF of zone ``code``'s map (one page of ``width``×``height`` CSS pixels)."""
    return render_pdf(zone_url(base_url, code, lang=lang), width, height, timeout_s=timeout_s)


def render_zone_images(
    base_url: str,
    codes: Sequence[str],
    on_image: Callable[[str, bytes], None],
    *,
    width: int = 1200,
    height: int = 800,
    image_type: Literal["png", "jpeg"] = "png",
    quality: int = 90,
    pages: int = 3,
    lang: str = "zh",
    switch: bool = True,
    collect: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Each zone's map as an image, in the shared browser, at most ``pages`` at once: each page loads one
    zone after another. ``on_image(code, data)`` is called in the browser's thread as soon as a zone is
    drawn. A zone whose page or data does not load (an unknown zone: 404) fails the batch, naming it.

    A page's first zone is a navigation to its map page; with ``switch`` the page then moves on in
    place (``wuye.showZone``: the zone's layers, title and view replaced, nothing else), which spares
    Chromium the page's HTML, Leaflet's scripts and the district's base layers per zone; without it,
    each zone is a fresh navigation in the same page (renderer process and caches reused).

    With ``collect``, a page's JavaScript garbage is collected as it leaves a zone. The map's tiles are
    canvases whose pixels live outside the JS heap: the heap stayed under 20 MiB, so V8 rarely
    collected, and the canvases of zones already captured piled up (renderer 180 -> 400 MiB, GPU
    process 50 -> 100 MiB over ten zones; collected: about 200 and 50 throughout).

    One context per page, not one for all: the pages of a context share its six connections per host
    (HTTP/1.1), and a zone page asks for about twenty tiles and layers at once, so three pages of one
    context queued behind each other (measured: slower than one page alone)."""

    def job(browser: Any) -> None:
        todo = deque(codes)
        live: deque[tuple[Any, str, list[str]]] = deque()  # (page, its zone, its page errors)
        sessions: dict[Any, Any] = {}  # page -> its DevTools session (garbage collection)

        def start(page: Any, errors: list[str], *, first: bool) -> None:  # without waiting for the drawing
            code = todo.popleft()
            errors.clear()
            if first or not switch:
                _go(page, zone_url(base_url, code, lang=lang), timeout_s, wait_until="commit")
            else:
                page.evaluate("code => wuye.showZone(code)", code)  # the last zone's layers are garbage now
            if collect and not first:
                if page not in sessions:
                    sessions[page] = page.context.new_cdp_session(page)
                sessions[page].send("HeapProfiler.collectGarbage")
            live.append((page, code, errors))

        try:
            while todo or live:
                while todo and len(live) < pages:
                    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
                    page = context.new_page()
                    start(page, _watch(page), first=True)
                page, code, errors = live.popleft()
                url = zone_url(base_url, code, lang=lang)
                _drawn(page, url, timeout_s, errors)
                _complete(page, url)
                options = {"quality": quality} if image_type == "jpeg" else {}
                on_image(code, page.screenshot(type=image_type, full_page=False, **options))
                if todo:  # the same page (and renderer process) goes on to the next zone
                    start(page, errors, first=False)
                else:
                    page.context.close()
        finally:
            for page, _, _ in live:
                page.context.close()

    _renderer.submit(job, timeout_s * max(1, len(codes)))


def _complete(page: Any, url: str) -> None:
    """Refuse a map whose own data requests failed (``wuye.state.errors``): a map missing its zone or
    layers is not the zone's map."""
    failed = page.evaluate("() => (window.wuye && wuye.state) ? wuye.state.errors.slice() : []")
    if failed:
        raise SnapshotError(f"{url} did not draw all its data: {failed}", field="url")


def close() -> None:
    """Stop the shared browser (it starts again on the next render)."""
    _renderer.close()
