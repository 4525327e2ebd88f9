"""The webhook receiver address given to `webhooks register`."""

from __future__ import annotations

import pytest

from yotposync.ops.heartland_webhooks import hide_secret, normalize_url, receiver_url, same_url

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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1:018751", f"https://127.0.0.1:18751/heartland/{SECRET}"),
        ("https://hooks.example.com:0443/", f"https://hooks.example.com/heartland/{SECRET}"),
        (
            "HTTPS://Hooks.Example.com:8443/x",
            f"https://hooks.example.com:8443/x/heartland/{SECRET}",
        ),
        ("http://[::1]:080", f"http://[::1]/heartland/{SECRET}"),
        ("http://[::1]:08703", f"http://[::1]:8703/heartland/{SECRET}"),
    ],
)
def test_receiver_url_normalises_host_and_port(url: str, expected: str) -> None:
    assert receiver_url(url, SECRET) == expected


def test_same_url_ignores_port_spelling() -> None:
    assert same_url("https://127.0.0.1:018751/heartland/s", "https://127.0.0.1:18751/heartland/s/")
    assert not same_url(
        "https://127.0.0.1:18751/heartland/s", "https://127.0.0.1:18752/heartland/s"
    )


def test_normalize_url_keeps_unreadable_port() -> None:
    assert normalize_url("https://hooks.example.com:x/y") == "https://hooks.example.com:x/y"


def test_receiver_url_error_hides_query() -> None:
    with pytest.raises(ValueError) as caught:
        receiver_url("ftp://admin:pw@hooks.example.com/?token=S3CR3T", SECRET)

    assert str(caught.value) == "'ftp://***@hooks.example.com/?***' is not an http or https URL"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"ftp://hooks.example.com/heartland/{SECRET}",
            "'ftp://hooks.example.com/heartland/***' is not an http or https URL",
        ),
        (
            f"https://hooks.example.com:99999/heartland/{SECRET}",
            "'https://hooks.example.com:99999/heartland/***' names a port outside 1 to 65535",
        ),
        (
            f"https://hooks.example.com/proxy/{SECRET} x",
            "'https://hooks.example.com/proxy/*** x' contains a space, a line break or another "
            "control character",
        ),
    ],
    ids=["scheme", "port", "space"],
)
def test_receiver_url_error_hides_secret(url: str, shown: str) -> None:
    # The address may be given with the receiver's path, and so with the secret.
    with pytest.raises(ValueError) as caught:
        receiver_url(url, SECRET)

    assert str(caught.value) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://sync.example.com/heartland/{SECRET}", "https://sync.example.com/heartland/***"),
        (
            "https://sync.example.com/heartland/old-secret/",
            "https://sync.example.com/heartland/***/",
        ),
        (
            "https://sync.example.com/heartland/old?a=1#f",
            "https://sync.example.com/heartland/***?***",
        ),
        # Other programs' receivers keep their credentials in these places.
        ("http://127.0.0.1:18699/hook?key=OTHERAPPSECRET", "http://127.0.0.1:18699/hook?***"),
        ("http://admin:PASSW0RD@127.0.0.1:18698/x/tok", "http://***@127.0.0.1:18698/x/tok"),
        ("http://127.0.0.1:18696/#FRAGSECRET", "http://127.0.0.1:18696/#***"),
        (f"https://sync.example.com/proxy/{SECRET}", "https://sync.example.com/proxy/***"),
        ("https://sync.example.com/heartland/", "https://sync.example.com/heartland/"),
        ("https://other.example.com/hook", "https://other.example.com/hook"),
    ],
)
def test_hide_secret_masks_receiver_segment(url: str, shown: str) -> None:
    assert hide_secret(url, SECRET) == shown
