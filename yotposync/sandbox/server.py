"""Run both emulators on threaded werkzeug servers (HTTP/1.1 keep-alive) in this process."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from decimal import Decimal
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from yotposync.sandbox.clock import Clock, SystemClock
from yotposync.sandbox.fault_injector import FaultController, TicketEditor
from yotposync.sandbox.faults import FaultPlan
from yotposync.sandbox.heartland import HeartlandApp
from yotposync.sandbox.heartland_state import HeartlandState
from yotposync.sandbox.keepalive import KeepAliveRequestHandler, OpenConnections, track_connections
from yotposync.sandbox.redemptions import RedemptionDesk
from yotposync.sandbox.store import Store
from yotposync.sandbox.webhooks import HeartlandWebhooks, WebhookRegistry
from yotposync.sandbox.yotpo import YotpoApp
from yotposync.sandbox.yotpo_state import RateLimiter, YotpoState

log = logging.getLogger(__name__)

# How often a serving thread checks for a stop request; bounds how long stop() takes.
SHUTDOWN_POLL_SECONDS = 0.05
LISTEN_BACKLOG = 128


def is_loopback(host: str) -> bool:
    """Tell whether `host` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Sandbox:
    """The Heartland Retail and Yotpo Loyalty emulators, started and stopped together."""

    def __init__(
        self,
        *,
        store: Store | None,
        heartland_port: int = 0,
        yotpo_port: int = 0,
        host: str = "127.0.0.1",
        points_per_dollar: Decimal = Decimal(1),
        vip_tiers: list[dict[str, Any]] | None = None,
        redemption_options: list[dict[str, Any]] | None = None,
        yotpo_rate_limit: float = 0,
        heartland_token: str = "sandbox-heartland-token",  # noqa: S107 - a public sandbox value
        yotpo_guid: str = "sandbox-guid",
        yotpo_api_key: str = "sandbox-api-key",
        allow_non_loopback: bool = False,
        clock: Clock | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(
                f"refusing to bind the sandbox to {host!r}, which other machines can reach; "
                "use 127.0.0.1, or pass allow_non_loopback=True (--allow-non-loopback)"
            )
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.heartland_token = heartland_token
        self.yotpo_guid = yotpo_guid
        self.yotpo_api_key = yotpo_api_key
        # Faults can be switched at run time, so every sandbox has a controller.
        self.faults = FaultController(faults)
        self.heartland = HeartlandState(store, self.faults.skewed(self.clock))
        self.yotpo = YotpoState(
            self.clock,
            points_per_dollar,
            vip_tiers=vip_tiers,
            redemption_options=redemption_options,
        )
        self.redemptions = RedemptionDesk(self.yotpo, self.clock)
        self.webhooks = WebhookRegistry(allow_non_loopback=allow_non_loopback)
        self._limiter = RateLimiter(yotpo_rate_limit, self.clock)
        self._ports = {"heartland": heartland_port, "yotpo": yotpo_port}
        self._servers: dict[str, BaseWSGIServer] = {}
        self._connections: list[OpenConnections] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> Sandbox:
        """Bind both ports and serve in background threads; return self."""
        if self._servers:
            raise RuntimeError("the sandbox is already running")
        apps: dict[str, Any] = {
            "heartland": self.faults.wrap(
                "heartland",
                HeartlandWebhooks(
                    HeartlandApp(self.heartland, self.heartland_token),
                    self.heartland,
                    self.webhooks,
                    self.heartland_token,
                ),
                {"Authorization": f"Bearer {self.heartland_token}"},
                TicketEditor(self.heartland),
            ),
            "yotpo": self.faults.wrap(
                "yotpo",
                YotpoApp(
                    self.yotpo,
                    self._limiter,
                    self.yotpo_guid,
                    self.yotpo_api_key,
                    self.redemptions,
                ),
                {"x-guid": self.yotpo_guid, "x-api-key": self.yotpo_api_key},
            ),
        }
        try:
            for name, app in apps.items():
                self._servers[name] = self._make_server(self._ports[name], app)
        except OSError:
            self._close_servers()
            raise
        for name, server in self._servers.items():
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                name=f"sandbox-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("sandbox started: heartland %s, yotpo %s", self.heartland_url, self.yotpo_url)
        return self

    def _make_server(self, port: int, app: Any) -> BaseWSGIServer:
        # Bind here rather than in werkzeug, which prints and calls sys.exit(1) when the
        # port is taken; an OSError lets the caller decide.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, port))
            listener.listen(LISTEN_BACKLOG)
            # werkzeug serves on a duplicate of the descriptor, so ours is closed below.
            server = make_server(
                self.host,
                port,
                app,
                threaded=True,
                request_handler=KeepAliveRequestHandler,
                fd=listener.fileno(),
            )
            self._connections.append(track_connections(server))
            return server
        finally:
            listener.close()

    def stop(self) -> None:
        """Stop serving and release both ports; calling it twice is harmless."""
        self.faults.release_held()
        for server in self._servers.values():
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        # Idle keep-alive connections would otherwise go on being served after the stop.
        for connections in self._connections:
            connections.close_all()
        self._connections = []
        self._close_servers()
        self._threads = []

    def _close_servers(self) -> None:
        for server in self._servers.values():
            server.server_close()
        self._servers = {}

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _port(self, name: str) -> int:
        server = self._servers.get(name)
        if server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return int(server.port)

    @property
    def heartland_port(self) -> int:
        return self._port("heartland")

    @property
    def yotpo_port(self) -> int:
        return self._port("yotpo")

    def _base(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def heartland_url(self) -> str:
        """Heartland API base, such as `http://127.0.0.1:8701/api`."""
        return f"{self._base(self.heartland_port)}/api"

    @property
    def yotpo_url(self) -> str:
        """Yotpo Loyalty API base, such as `http://127.0.0.1:8702/api/v2`."""
        return f"{self._base(self.yotpo_port)}/api/v2"

    @property
    def heartland_admin_url(self) -> str:
        return f"{self._base(self.heartland_port)}/_sandbox"

    @property
    def yotpo_admin_url(self) -> str:
        return f"{self._base(self.yotpo_port)}/_sandbox"
