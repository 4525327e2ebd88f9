"""Local emulators of Heartland Retail and Yotpo Loyalty, and a seeded store generator.

`Sandbox` serves both APIs on 127.0.0.1, and `generate_store` makes the data it serves.
The returned `Store` also computes the Yotpo pushes and balances the daemon should produce.
Choices made where the vendor references leave a fact unknown are in `policies`.
"""

from yotposync.sandbox.builder import StoreBuilder
from yotposync.sandbox.clock import Clock, ManualClock, SystemClock
from yotposync.sandbox.generator import generate_store
from yotposync.sandbox.server import Sandbox
from yotposync.sandbox.store import ExpectedPush, PlanKind, SoldLine, Store, TicketPlan

__all__ = [
    "Clock",
    "ExpectedPush",
    "ManualClock",
    "PlanKind",
    "Sandbox",
    "SoldLine",
    "Store",
    "StoreBuilder",
    "SystemClock",
    "TicketPlan",
    "generate_store",
]
