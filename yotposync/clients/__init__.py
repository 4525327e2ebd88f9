"""Clients for the two remote APIs, on a shared HTTP layer with retries and rate limits."""

from yotposync.clients.heartland import HeartlandClient, TicketPage
from yotposync.clients.http import HttpService, RateLimiter, RetryPolicy, is_loopback_url
from yotposync.clients.yotpo import YotpoClient

__all__ = [
    "HeartlandClient",
    "HttpService",
    "RateLimiter",
    "RetryPolicy",
    "TicketPage",
    "YotpoClient",
    "is_loopback_url",
]
