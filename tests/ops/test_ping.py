"""Health-check pings on a real local HTTP server; a failed ping only warns."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.ops.recorder import Recorder
from yotposync.ops.ping import Pinger


def test_start_success_fail_paths() -> None:
    with Recorder() as service:
        pinger = Pinger(f"{service.url}/ping/abc-123", 2)
        results = [pinger.start(), pinger.success(), pinger.fail()]
        pinger.close()
    assert results == [True, True, True]
    assert service.paths() == ["/ping/abc-123/start", "/ping/abc-123", "/ping/abc-123/fail"]


def test_pings_are_get() -> None:
    with Recorder() as service:
        Pinger(service.url, 2).success()
    assert [request.method for request in service.requests] == ["GET"]


def test_error_status_warns() -> None:
    with Recorder(status=500) as service, capture_logs() as logs:
        sent = Pinger(f"{service.url}/ping/abc", 2).success()
    logs = [entry for entry in logs if entry["event"].startswith("ping_")]
    assert sent is False
    assert logs[-1]["event"] == "ping_failed"
    assert logs[-1]["error"] == "HTTP 500"


def test_refused_connection_warns_without_url() -> None:
    with capture_logs() as logs:
        sent = Pinger("http://127.0.0.1:1/ping/secret-uuid", 1).start()
    assert sent is False
    assert logs[0]["event"] == "ping_failed"
    assert logs[0]["host"] == "127.0.0.1"
    assert "secret-uuid" not in repr(logs)


def test_consecutive_failures_counted() -> None:
    pinger = Pinger("http://127.0.0.1:1/x", 1)
    with capture_logs() as logs:
        pinger.start()
        pinger.fail()
    assert [entry["consecutive_failures"] for entry in logs] == [1, 2]


def test_recovery_logged() -> None:
    with Recorder(status=503) as service:
        pinger = Pinger(service.url, 2)
        with capture_logs() as logs:
            pinger.start()
            service.status = 200
            pinger.success()
    events = [entry["event"] for entry in logs if entry["event"].startswith("ping_")]
    assert events == ["ping_failed", "ping_recovered"]
