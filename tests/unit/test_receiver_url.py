"""The webhook receiver address given to `webhooks register`."""

from __future__ import annotations

import pytest

from yotposync.ops.heartland_webhooks import receiver_url

SECRET = "receiver-secret-0123456789abcdef"


def test_receiver_url_adds_secret_path() -> None:
    url = receiver_url("https://hooks.example.com/yotposync/", SECRET)
    assert url == f"https://hooks.example.com/yotposync/heartland/{SECRET}"


def test_receiver_url_given_whole_is_kept() -> None:
    whole = f"https://hooks.example.com/heartland/{SECRET}"
    assert receiver_url(whole + "/", SECRET) == whole


def test_receiver_url_plain_http_on_loopback() -> None:
    assert receiver_url("http://127.0.0.1:8703", SECRET).startswith("http://127.0.0.1:8703/")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1/\nX: y", "contains a space, a line break or another control"),
        ("https://hooks.example.com/a b", "contains a space, a line break or another control"),
        ("https://127.0.0.1:99999", "names a port outside 1 to 65535"),
        ("https://127.0.0.1:0", "names a port outside 1 to 65535"),
        ("ftp://hooks.example.com", "is not an http or https URL"),
        ("https://hooks.example.com/?a=1", "without a query, fragment or password"),
        ("http://hooks.example.com", "use https"),
    ],
)
def test_receiver_url_rejects(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        receiver_url(url, SECRET)
