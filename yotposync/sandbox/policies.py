"""Behaviour the sandbox chooses where the vendor references leave a fact unknown.

Every choice below covers a fact that the Heartland Retail or Yotpo Loyalty references mark
as unknown or unsettled. Each is made once, here, so the emulators, the store generator and
client code that depends on a choice can point at one place.

Heartland Retail emulator:

- Errors have the body `{"error": code, "message": text, "details": {field: text}}`.
  A bad list parameter (filter, sort, page size) is 400 `invalid_request`, a bad record
  in a write is 422 `validation_error`, an unknown record is 404 `not_found`, and a
  missing or wrong bearer token is 401 `unauthorized`.
- Page size: `per_page` defaults to 20 and is at most 1000, or `all`. `pages` is the
  page count rounded up, so an empty result has 0 pages.
- Voiding a completed ticket keeps `status: "complete"` and sets `voided?` to true.
  Voiding an open ticket sets `status: "voided"` as well. A voided ticket cannot be
  completed, edited or un-voided.
- Completing a ticket does not require a zero balance: the vendor's own history importer
  creates complete tickets directly.
- `updated_at` moves on every change to a ticket, including added lines and payments.
- UTC timestamps are written `YYYY-MM-DDTHH:MM:SS+00:00`. The `local_*` fields contain the
  store's wall-clock digits with the same `+00:00` suffix, as the vendor's own sample does.
- `recalculate: false` on create keeps each line's given `value`. Ticket totals are the sums
  of the lines either way.
- Custom field values must belong to a defined custom field (422 otherwise). Definitions
  can be listed and created through `/api/custom_fields`.
- Unknown keys in a ticket or customer write are rejected with 422, except the importer
  flags listed in `IGNORED_TICKET_CREATE_KEYS`.
- Each location has a time zone that sets the wall clock of `local_completed_at`.
  Location records do not include it.
- Deleting a customer (`DELETE /api/customers/{id}`, which returns 204) sets `deleted_at`
  and moves `updated_at`. A deleted customer stays readable and listed, but writes to it are
  404. Merging (`POST /_sandbox/customers/{id}/merge` with `{"into": id}`, since no merge
  API is known) moves the source's tickets to the target, moving each ticket's
  `updated_at`, then deletes the source.
- Phone numbers live on customer addresses (`/api/customers/{id}/addresses`). Adding an
  address, or changing one, moves the customer's `updated_at`.

Yotpo Loyalty emulator:

- Errors have the body `{"error": text}`.
- `total_amount_cents` must be a non-negative integer, or a string of digits as in the
  vendor's own example. Anything else, or a missing `customer_email` or `order_id`, is 422.
- A repeated `order_id` is accepted with 200 and awards nothing again. The one exception is
  an order stored with a status that does not award: a repeat with an awarding status awards
  it once, as a status update.
- Statuses that award: `paid` (any letter case), or no `status` at all.
- An order for an unknown e-mail creates that customer, opted in.
- A customer who is not opted in earns nothing from orders. `POST /customers` with
  `opted_in` null or absent applies the account default, which is opted in.
- A refund `id` seen before is accepted with 200 and ignored.
- A refund against an unknown `order_id` is 404.
- Partial refunds reverse points cumulatively: after refunds totalling R on an order of
  amount A that awarded P points, the order's reversed points are floor(P * min(R, A) / A).
  Each refund removes the increase over what earlier refunds removed.
- A points balance never goes below zero. A refund that would take more takes the balance
  to zero, and an adjustment that would overdraw is rejected with 422.
- E-mail addresses are matched without regard to case or surrounding spaces.
- `POST /customers` finds the customer by `id` (stored as `third_party_id`) first, then by
  e-mail, so sending a known `id` with a new e-mail changes the e-mail. An `id` found on
  one customer with an e-mail that belongs to another is 422. `GET /customers` without
  any identifier is 400.
- An order with a `customer_id` credits the customer linked to that id, whatever the
  order's e-mail; only an order whose id links to no one is matched by e-mail.
- VIP tiers: a customer is in the highest-ranked tier whose thresholds (`points_earned`
  lifetime points, `amount_spent_cents`, `purchases_made`; 0 asks nothing) they all meet.
  Placement is recomputed after every order, refund, adjustment and customer write, so a
  refund can lower the tier. `vip_tier_upgrade_requirements` counts what the next tier
  still needs and is all null at the top tier or without tiers. Tier `points_multiplier`
  values are served but not applied to earned points.
- `GET /redemption_options` with `customer_email`, `customer_id` or `phone_number` lists the
  options whose points cost (`amount`) the customer's balance covers; none while the
  customer is not opted in; 404 for an unknown customer.
- Success bodies of orders, refunds, customers and adjustments are `{}` with status 200.
- The optional rate limit counts requests in fixed windows. A 429 carries
  `ratelimit-remaining: 0` and, in `ratelimit-reset`, the whole seconds until the window
  ends. Requests to `/_sandbox/` paths are not counted.
- While the rate limit is off, the headers advertise the vendor's published 10 requests per
  second with all 10 remaining, so a client that follows them has no reason to wait.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Final

# Heartland list paging.
DEFAULT_PER_PAGE: Final = 20
MAX_PER_PAGE: Final = 1000

# Heartland error codes.
ERROR_INVALID_REQUEST: Final = "invalid_request"
ERROR_VALIDATION: Final = "validation_error"
ERROR_NOT_FOUND: Final = "not_found"
ERROR_UNAUTHORIZED: Final = "unauthorized"

# Heartland ticket statuses.
STATUS_COMPLETE: Final = "complete"
STATUS_INCOMPLETE: Final = "incomplete"
STATUS_VOIDED: Final = "voided"  # only for tickets voided while open

# Heartland payment statuses: only complete payments count toward `total_paid`.
PAYMENT_COMPLETE: Final = "complete"
PAYMENT_VOIDED: Final = "voided"

# Keys the vendor's history importer sends on ticket create that the sandbox accepts and
# ignores: the sandbox keeps no inventory and no separate local creation time.
IGNORED_TICKET_CREATE_KEYS: Final = frozenset({"affect_inventory", "local_created_at"})

# Suffix written after the wall-clock digits of `local_*` fields.
LOCAL_TIME_SUFFIX: Final = "+00:00"

# Yotpo order statuses that award points; an order without a status awards too.
AWARDING_ORDER_STATUSES: Final = frozenset({"paid"})

# Account default for `opted_in` when a customer is created without a value.
DEFAULT_OPT_IN: Final = True

# Rate-limit headers while the limit is off: the vendor's published limit, never reached.
ADVERTISED_RATE_LIMIT: Final = 10

# The merchant's time zone, used for the local `date` of Yotpo history items.
MERCHANT_TIME_ZONE: Final = "America/Chicago"

DEFAULT_CURRENCY: Final = "USD"

# Texts of Yotpo history items.
HISTORY_PURCHASE: Final = "Make a purchase"
HISTORY_REFUND: Final = "Refund"
HISTORY_ADJUSTMENT: Final = "Points adjustment"  # when `history_title` is absent
HISTORY_APPROVED: Final = "Approved"


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as a Heartland UTC timestamp, `YYYY-MM-DDTHH:MM:SS+00:00`."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"


def format_local(wall_clock: datetime) -> str:
    """Format store wall-clock time (naive) as a Heartland `local_*` field."""
    return wall_clock.strftime("%Y-%m-%dT%H:%M:%S") + LOCAL_TIME_SUFFIX


def format_yotpo_time(moment: datetime) -> str:
    """Format an aware datetime as Yotpo writes it, with milliseconds and `Z`."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def order_points(amount_cents: int, points_per_dollar: Decimal) -> int:
    """Return the points an order of `amount_cents` awards: floor(dollars x points per dollar)."""
    if amount_cents <= 0:
        return 0
    points = Decimal(amount_cents) * points_per_dollar / 100
    return int(points.to_integral_value(rounding=ROUND_FLOOR))


def reversed_points(awarded: int, order_cents: int, refunded_cents: int) -> int:
    """Return the points reversed in total after refunds of `refunded_cents` on one order.

    The result is cumulative: floor(awarded x min(refunded, order) / order). A refund
    removes the difference between this value after it and before it.
    """
    if awarded <= 0 or order_cents <= 0 or refunded_cents <= 0:
        return 0
    return awarded * min(refunded_cents, order_cents) // order_cents


def is_awarding_status(status: str | None) -> bool:
    """Tell whether a Yotpo order with this `status` awards points."""
    return status is None or status.strip().lower() in AWARDING_ORDER_STATUSES


def normalize_email(email: str) -> str:
    """Return the form under which the Yotpo emulator matches e-mail addresses."""
    return email.strip().lower()
