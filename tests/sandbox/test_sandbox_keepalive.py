"""The sandbox keeps connections open between requests, and a stop closes them.

These speak raw HTTP/1.1 over a socket, so that what is on the wire (one connection, the
next request right behind a body the application never read) is exactly what is tested.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from yotposync.sandbox import Sandbox

TOKEN = "sandbox-heartland-token"


def _connect(url: str) -> tuple[socket.socket, str]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    connection = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return connection, parts.path


class Wire:
    """One client connection that writes raw requests and reads whole responses."""

    def __init__(self, url: str) -> None:
        self.socket, self.base_path = _connect(url)
        self.reader = self.socket.makefile("rb")

    def send(self, raw: bytes) -> None:
        self.socket.sendall(raw)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        status_line = self.reader.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = self.reader.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.reader.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


def _get(path: str, host: str, *, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n"
    ).encode()


def test_several_requests_share_one_connection(empty_sandbox: Sandbox) -> None:
    wire = Wire(empty_sandbox.heartland_url)
    try:
        for _ in range(5):
            wire.send(_get(f"{wire.base_path}/customers?per_page=1", "127.0.0.1"))
            status, headers, body = wire.response()
            assert status == 200
            assert headers.get("connection", "") != "close"
            assert "results" in json.loads(body)
    finally:
        wire.close()


def test_unread_body_not_read_as_request(empty_sandbox: Sandbox) -> None:
    # Bad credentials: the emulator returns 401 without reading the body. The GET written
    # right behind it, in the same packet, must still be served as a request of its own.
    wire = Wire(empty_sandbox.yotpo_url)
    body = b'{"order_id": "' + b"x" * 4000 + b'"}'
    post = (
        f"POST {wire.base_path}/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-guid: wrong\r\nx-api-key: wrong\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    get = (
        f"GET {wire.base_path}/customers?customer_email=nobody%40example.com HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nx-guid: sandbox-guid\r\nx-api-key: sandbox-api-key\r\n\r\n"
    ).encode()
    try:
        wire.send(post + get)
        first, _, _ = wire.response()
        second, _, second_body = wire.response()
    finally:
        wire.close()
    assert first == 401
    assert second == 404, second_body


def test_chunked_body_is_read_whole(empty_sandbox: Sandbox) -> None:
    wire = Wire(empty_sandbox.yotpo_url)
    payload = json.dumps({"email": "ann@example.com", "first_name": "Ann"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    post = (
        f"POST {wire.base_path}/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "x-guid: sandbox-guid\r\nx-api-key: sandbox-api-key\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked
    get = (
        f"GET {wire.base_path}/customers?customer_email=ann%40example.com HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nx-guid: sandbox-guid\r\nx-api-key: sandbox-api-key\r\n\r\n"
    ).encode()
    try:
        wire.send(post)
        created, _, created_body = wire.response()
        wire.send(get)
        found, _, found_body = wire.response()
    finally:
        wire.close()
    assert created in (200, 201), created_body
    assert found == 200, found_body
    assert json.loads(found_body)["email"] == "ann@example.com"


def test_client_asking_to_close_gets_closed(empty_sandbox: Sandbox) -> None:
    wire = Wire(empty_sandbox.heartland_url)
    try:
        wire.send(_get(f"{wire.base_path}/customers", "127.0.0.1", extra="Connection: close\r\n"))
        status, headers, _ = wire.response()
        assert status == 200
        assert headers.get("connection") == "close"  # sent, so a client does not reuse it
        assert wire.reader.read() == b""  # the server closed its end
    finally:
        wire.close()


def test_unparsable_request_line_gets_400_and_close(
    empty_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # A header line over http.server's limit gets a 431 and the connection closed, so the
    # rest of the line is never read as a request.
    wire = Wire(empty_sandbox.heartland_url)
    try:
        wire.send(_get("/", "127.0.0.1", extra="X-Long: " + "a" * 70_000 + "\r\n"))
        status, headers, _ = wire.response()
        assert status == 431
        assert headers.get("connection") == "close"
        assert wire.reader.read() == b""
    finally:
        wire.close()
    # A line that is not a request gets an HTTP/0.9 error response, without a status line.
    for line in (b"GARBAGE", b"GET / HTTP/x.y"):
        bare = Wire(empty_sandbox.heartland_url)
        try:
            bare.send(line + b"\r\n\r\n")
            assert b"400" in bare.reader.read()  # read to the end: the server closed it
        finally:
            bare.close()
    time.sleep(0.2)  # let the serving threads finish writing to stderr
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_unusable_content_length_closes_connection(empty_sandbox: Sandbox, length: str) -> None:
    # Without a usable length, the body cannot be separated from a next request, so none of
    # the bytes after the header may be served as one.
    wire = Wire(empty_sandbox.yotpo_url)
    smuggled = _get(f"{wire.base_path}/customers", "127.0.0.1")
    request = (
        f"POST {wire.base_path}/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-guid: sandbox-guid\r\nx-api-key: sandbox-api-key\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    try:
        wire.send(request + smuggled)
        status, headers, _ = wire.response()
        assert status >= 400
        assert headers.get("connection") == "close"
        assert wire.reader.read() == b""
    finally:
        wire.close()


def test_expect_continue_answered_once(empty_sandbox: Sandbox) -> None:
    wire = Wire(empty_sandbox.yotpo_url)
    body = json.dumps({"email": "ann@example.com"}).encode()
    request = (
        f"POST {wire.base_path}/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "x-guid: sandbox-guid\r\nx-api-key: sandbox-api-key\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    try:
        wire.send(request)
        assert wire.reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert wire.reader.readline() == b"\r\n"
        wire.send(body)
        status, _, created = wire.response()
    finally:
        wire.close()
    assert status in (200, 201), created


def test_requests_session_reuses_its_connection(empty_sandbox: Sandbox) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{empty_sandbox.heartland_url}/customers"
    ports = set()
    for _ in range(3):
        response = session.get(url, headers=headers, timeout=5, stream=True)
        ports.add(response.raw.connection.sock.getsockname()[1])
        response.content  # noqa: B018 - read the body so the connection returns to the pool
    session.close()
    assert len(ports) == 1


def test_stop_closes_idle_connections() -> None:
    sandbox = Sandbox(store=None).start()
    url = sandbox.heartland_url
    wire = Wire(url)
    try:
        wire.send(_get(f"{wire.base_path}/customers", "127.0.0.1"))
        assert wire.response()[0] == 200
        sandbox.stop()
        # The idle connection is closed rather than left served by the stopped sandbox.
        deadline = time.monotonic() + 5
        wire.socket.settimeout(5)
        assert wire.reader.read() == b""
        assert time.monotonic() < deadline
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/customers", timeout=2)
    finally:
        wire.close()
        sandbox.stop()
