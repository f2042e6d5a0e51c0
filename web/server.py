"""The production server: gunicorn worker processes, each serving the app with waitress.

Gunicorn's own threaded worker hands a connection to a thread as soon as its first byte
arrives, and the thread then waits for the rest: ten clients that send a header line per
second hold every thread, and the service stops answering. Here gunicorn only manages the
processes (forking, heartbeats, restarts, signals); inside each process waitress reads every
request whole (headers, and the body, spooled to a temporary file past ``INBUF_OVERFLOW``)
in one event loop before a thread sees it, so a slow client costs a socket and a buffer,
never a thread. A request must arrive within ``client_timeout`` seconds plus one second per
``min_upload_rate`` bytes received, else its connection is closed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ThreadedTaskDispatcher

from gallery.vector_index import use_threads
from web import create_app
from web.auth import open_mode_refusal

log = logging.getLogger(__name__)

WORKER_CLASS = "web.server.BufferingWorker"
INBUF_OVERFLOW = 128 * 1024  # request bytes kept in memory per connection; more go to a temporary file
MAX_HEADER_BYTES = 64 * 1024  # a request line and header fields larger than this are refused (431)
CHECK_INTERVAL = 0.5  # seconds between checks of the connections' deadlines


class ReidServer(BaseApplication):
    """Gunicorn running ``create_app()`` in each worker process.

    The app is not preloaded: the master forks before any model, engine or index exists, so
    TensorFlow is never forked, and each worker loads its own models on first use. The
    workers share state through the database only (see ``gallery.index_sync.SharedIndex``).
    While the service is in open mode (``open_mode``), the master refuses to start when a
    socket it bound, by ``--bind`` in ``GUNICORN_CMD_ARGS`` or by socket activation too,
    reaches beyond this machine.
    """

    def __init__(self, options: dict[str, Any], *, open_mode: bool = False) -> None:
        self.options = options
        self.open_mode = open_mode
        super().__init__()

    def load_config(self) -> None:
        """Apply the options, then any settings in ``GUNICORN_CMD_ARGS`` (those win, but the worker class)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no ~/.gunicorn socket
            self.cfg.set("control_socket_disable", True)
        extra = self.cfg.get_cmd_args_from_env()
        if extra:
            parsed = self.cfg.parser().parse_args(extra)
            for key, value in vars(parsed).items():
                if value is not None and key in self.cfg.settings:
                    self.cfg.set(key, value)
        if self.cfg.worker_class_str != WORKER_CLASS:
            log.warning("ignoring worker class %s from GUNICORN_CMD_ARGS: the service needs %s, "
                        "which reads requests whole before a thread serves them",
                        self.cfg.worker_class_str, WORKER_CLASS)
            self.cfg.set("worker_class", WORKER_CLASS)
        self.cfg.set("when_ready", self._check_listeners)

    def _check_listeners(self, arbiter: Any) -> None:
        """Stop before any worker starts if open mode would be reachable from other machines."""
        for listener in arbiter.LISTENERS:
            refusal = open_mode_refusal(listening_host(listener.sock), not self.open_mode)
            if refusal:
                arbiter.halt(refusal, exit_status=1)

    def load(self) -> Flask:  # type: ignore[override]  # types-gunicorn: a narrower start_response than Flask's
        """Build the app in a worker; bring its indexes in step before it takes requests."""
        app = create_app()
        warm_up(app)  # a rebuild here uses every core
        use_threads(1)  # then one FAISS thread per request: see use_threads
        return app


def listening_host(sock: socket.socket) -> str:
    """Return the address a listening socket is bound to (``localhost`` for a Unix socket)."""
    if sock.family == socket.AF_UNIX:
        return "localhost"
    return str(sock.getsockname()[0])


class _DeadlineChannel(HTTPChannel):
    """Waitress's connection, remembering when the request it is reading began and its size so far."""

    request_began: float | None = None
    request_bytes = 0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began, self.request_bytes = time.monotonic(), 0
        self.request_bytes += len(data)
        return super().received(data)

    def overdue(self, timeout: float, min_rate: float) -> bool:
        """Whether the request being read, or the idle connection, has run out of time."""
        if self.requests:  # a thread is answering: its time is the gunicorn timeout's business
            return False
        if self.request is not None and self.request_began is not None:
            return time.monotonic() - self.request_began > timeout + self.request_bytes / min_rate
        return time.time() - self.last_activity > timeout


class _Sent:
    """A response as gunicorn's access log reads it: status, headers and bytes sent."""

    def __init__(self) -> None:
        self.status = "500"
        self.headers: list[tuple[str, str]] = []
        self.sent = 0


def access_logged(app: Any, log: Any) -> Any:
    """Wrap a WSGI app to write gunicorn's access log line (``--access-logfile``) for each request."""

    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        began, sent = time.monotonic(), _Sent()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            sent.status, sent.headers = status, headers
            return start_response(status, headers, exc_info)

        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", environ.get("PATH_INFO", "")))
        result = app(environ, start)
        try:
            for chunk in result:
                sent.sent += len(chunk)
                yield chunk
        finally:
            if hasattr(result, "close"):
                result.close()
            headers = [(key[5:].replace("_", "-"), value) for key, value in environ.items()
                       if key.startswith("HTTP_")]
            log.access(sent, headers, environ, timedelta(seconds=time.monotonic() - began))

    return logged


class BufferingWorker(Worker):
    """A gunicorn worker whose HTTP server is waitress, on the sockets gunicorn bound.

    The app's settings give the limits: ``connection_limit`` open connections, the
    ``client_timeout`` and ``min_upload_rate`` deadlines, and bodies up to
    ``max_content_length`` (413 beyond, before a thread sees the request).
    """

    def run(self) -> None:
        flask_app = cast(Flask, self.wsgi)  # what ReidServer.load returns
        settings = flask_app.extensions["reid"].settings
        self.timeout_s, self.min_rate = float(settings.client_timeout), float(settings.min_upload_rate)
        socket_map: dict[int, Any] = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(self.cfg.threads)
        app = access_logged(flask_app, self.log) if self.log.access_log_enabled else flask_app
        create_server(
            app, map=socket_map, _dispatcher=self.dispatcher,
            # gunicorn's listeners hold the socket in .sock; types-gunicorn types them as sockets
            sockets=[listener.sock for listener in self.sockets],  # type: ignore[attr-defined]
            threads=self.cfg.threads,
            connection_limit=settings.connection_limit, channel_timeout=settings.client_timeout,
            max_request_body_size=settings.max_content_length, max_request_header_size=MAX_HEADER_BYTES,
            inbuf_overflow=INBUF_OVERFLOW, backlog=self.cfg.backlog, ident="reid", asyncore_use_poll=True)
        servers = [item for item in socket_map.values() if isinstance(item, BaseWSGIServer)]
        for server in servers:
            server.channel_class = _DeadlineChannel
        self.log.info("worker %s serving with waitress: %d threads, at most %d connections",
                      os.getpid(), self.cfg.threads, settings.connection_limit)
        next_check = 0.0
        while self.alive and self.ppid == os.getppid():
            self.notify()
            wasyncore.loop(timeout=CHECK_INTERVAL, map=socket_map, use_poll=True, count=1)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + CHECK_INTERVAL
                self._close_overdue(socket_map)
        self._stop(servers, socket_map)

    def _close_overdue(self, socket_map: dict[int, Any]) -> None:
        for channel in list(socket_map.values()):
            if isinstance(channel, _DeadlineChannel) and not channel.will_close \
                    and channel.overdue(self.timeout_s, self.min_rate):
                channel.will_close = True  # closed by the loop's next pass

    def _stop(self, servers: list[BaseWSGIServer], socket_map: dict[int, Any]) -> None:
        """Stop accepting, finish the requests in progress (up to the graceful timeout), exit."""
        for server in servers:
            server.accepting = False
            server.del_channel()
            if server.socket is not None:
                server.socket.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline and any(
                isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len)
                for channel in list(socket_map.values())):
            self.notify()
            wasyncore.loop(timeout=CHECK_INTERVAL, map=socket_map, use_poll=True, count=1)
        self.dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        wasyncore.close_all(socket_map)


def warm_up(app: Flask) -> None:
    """Load and run the models once, sync the app's indexes with the database, remove files left by a killed write."""
    state = app.extensions["reid"]
    state.warm()
    gallery = state.gallery
    with state.sessions() as session:
        gallery.remove_orphan_files(session)
        gallery.sightings.remove_orphan_crops(session)
        gallery.searches.remove_orphan_files(session)
        vectors, sightings = len(gallery.index(session)), len(gallery.sightings.index(session))
    log.info("worker %d ready: model %s, %d image and %d sighting vectors indexed",
             os.getpid(), gallery.embedder.model_id, vectors, sightings)


def serve(data_dir: Path, *, host: str, port: int, workers: int, threads: int,
          timeout: int = 120, open_mode: bool = False) -> None:
    """Run gunicorn until it is stopped: ``workers`` processes of ``threads`` threads each.

    The workers build the app from the environment, so the data directory (which may come
    from ``--data-dir``) is passed to them as ``REID_DATA_DIR``.
    """
    os.environ["REID_DATA_DIR"] = str(data_dir)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    ReidServer({"bind": bind, "workers": workers, "threads": threads, "worker_class": WORKER_CLASS,
                "preload_app": False, "timeout": timeout, "proc_name": "reid"},
               open_mode=open_mode).run()
