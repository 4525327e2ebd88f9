"""systemd service notifications (the sd_notify protocol) without libsystemd.

systemd passes the address of a datagram socket in `$NOTIFY_SOCKET` to a service started with
`Type=notify`. The service sends newline-separated `KEY=value` assignments to it: `READY=1`
once it serves, `WATCHDOG=1` heartbeats when `WatchdogSec=` is set, `STOPPING=1` when it
shuts down and `STATUS=...` for `systemctl status`. An address starting with `@` names a
socket in the Linux abstract namespace. The protocol is described in sd_notify(3) and is
declared stable there.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

import structlog

log = structlog.get_logger("yotposync.sdnotify")

NOTIFY_SOCKET_VARIABLE = "NOTIFY_SOCKET"
WATCHDOG_USEC_VARIABLE = "WATCHDOG_USEC"
WATCHDOG_PID_VARIABLE = "WATCHDOG_PID"


class Notifier:
    """Sends notifications to the service manager; does nothing when none is listening.

    A failed send is logged once and never raised, because the daemon's work must not stop
    over a notification. systemd acts on a missing `READY=1` or `WATCHDOG=1` itself.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        # Reentrant, because the signal handler that sends STOPPING=1 may interrupt the main
        # thread while it sends READY=1.
        self._lock = threading.RLock()
        self._warned = False

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, pid: int | None = None
    ) -> Notifier:
        """Build the notifier that `$NOTIFY_SOCKET` and the watchdog variables describe.

        The watchdog interval applies only when `$WATCHDOG_PID` is unset or names this
        process, as sd_watchdog_enabled(3) specifies.
        """
        environment = os.environ if environ is None else environ
        address = environment.get(NOTIFY_SOCKET_VARIABLE) or None
        usec_text = environment.get(WATCHDOG_USEC_VARIABLE, "")
        watchdog_usec = int(usec_text) if usec_text.isdigit() and int(usec_text) > 0 else None
        watchdog_pid = environment.get(WATCHDOG_PID_VARIABLE, "")
        own_pid = os.getpid() if pid is None else pid
        if watchdog_pid and watchdog_pid != str(own_pid):
            watchdog_usec = None
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_seconds(self) -> float | None:
        """Seconds between heartbeats: half the watchdog timeout, as sd_watchdog_enabled(3)
        recommends; None when systemd expects no heartbeats."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(*_status(text))

    def notify(self, *assignments: str) -> bool:
        """Send assignments such as `READY=1` in one datagram; return whether it was sent."""
        if self.address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._socket.sendto(message, _socket_address(self.address))
            except (OSError, ValueError) as exc:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "sd_notify_failed",
                        socket=self.address,
                        error=str(exc),
                        detail="later notification failures are not logged",
                    )
                return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _socket_address(address: str) -> str | bytes:
    """Turn `$NOTIFY_SOCKET` into a socket address: `@name` is `\\0name` in the abstract
    namespace, anything else must be an absolute file system path."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    if address.startswith("/"):
        return address
    # NOTE: systemd 254 and later may also pass an AF_VSOCK address ("vsock:..."), used for
    # virtual machines. It is not supported here, so such a service gets no notifications.
    raise ValueError(f"unsupported {NOTIFY_SOCKET_VARIABLE} address {address!r}")


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    # A status is one line; a line break would start another assignment.
    return (f"STATUS={' '.join(text.split())}",)
