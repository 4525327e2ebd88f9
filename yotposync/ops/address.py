"""Listen addresses written as `host:port`, such as `127.0.0.1:9310` or `[::1]:9310`."""

from __future__ import annotations

import ipaddress

LISTEN_EXAMPLE = '"127.0.0.1:9310"'


def parse_listen_address(text: str) -> tuple[str, int]:
    """Split `host:port` into a host and a port number; raise ValueError when it is invalid.

    The host is an IPv4 address, an IPv6 address in brackets, or `localhost`. Port 0 lets
    the system choose any free port.
    """
    host, separator, port_text = text.strip().rpartition(":")
    if not separator or not host:
        raise ValueError(f"must be host:port, e.g. {LISTEN_EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(
                f"must not put an IPv4 address or a name in brackets: {LISTEN_EXAMPLE}"
            )
    elif ":" in host:
        raise ValueError('must put an IPv6 address in brackets, e.g. "[::1]:9310"')
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"must have an IP address or localhost as its host, e.g. {LISTEN_EXAMPLE}"
            ) from None
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"must end with a port number from 0 to 65535, e.g. {LISTEN_EXAMPLE}")
    return host, int(port_text)


def format_listen_address(host: str, port: int) -> str:
    """Write a host and port as `host:port`, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
