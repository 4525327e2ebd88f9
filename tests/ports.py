"""Loopback ports in a fixed range, for tests that must not bind an ephemeral port."""

from __future__ import annotations

import socket

FIRST_PORT = 18900
LAST_PORT = 18999


def free_ports(count: int, first: int = FIRST_PORT, last: int = LAST_PORT) -> list[int]:
    """Return `count` ports from `first` to `last` that 127.0.0.1 can bind now.

    Another process may take a port between this check and the bind, so a caller that
    fails to bind should call this again. Raises RuntimeError when the range has too few
    free ports.
    """
    found: list[int] = []
    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports on 127.0.0.1 from {first} to {last}")
