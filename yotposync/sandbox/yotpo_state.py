"""The Yotpo Loyalty emulator's data: customers, orders, refunds, points and a request log.

One re-entrant lock guards all of it. Every order, refund and adjustment received is kept
in the request log, including rejected ones and ignored duplicates, so tests can check that
nothing was sent twice.
"""

from __future__ import annotations

import copy
import itertools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from yotposync.sandbox.clock import Clock
from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.policies import (
    ADVERTISED_RATE_LIMIT,
    DEFAULT_CURRENCY,
    DEFAULT_OPT_IN,
    HISTORY_ADJUSTMENT,
    HISTORY_APPROVED,
    HISTORY_PURCHASE,
    HISTORY_REFUND,
    MERCHANT_TIME_ZONE,
    format_yotpo_time,
    is_awarding_status,
    normalize_email,
    order_points,
    reversed_points,
)
from yotposync.sandbox.vip_tiers import TierProgram, TierTotals

_MERCHANT_ZONE = ZoneInfo(MERCHANT_TIME_ZONE)


def _unprocessable(message: str) -> RequestError:
    return RequestError(422, "unprocessable", message)


def _not_found(message: str) -> RequestError:
    return RequestError(404, "not_found", message)


@dataclass
class HistoryItem:
    created_at: datetime
    action: str
    points: int
    status: str
    order_id: str | None = None


@dataclass
class LoyaltyCustomer:
    email: str  # as first received; matching uses normalize_email
    created_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    third_party_id: str | None = None
    pos_account_id: str | None = None
    phone_number: str | None = None
    tags: str | None = None
    opted_in: bool = DEFAULT_OPT_IN
    opted_in_at: datetime | None = None
    points_balance: int = 0
    points_earned: int = 0
    total_spend_cents: int = 0
    total_purchases: int = 0
    last_purchase_at: datetime | None = None
    history: list[HistoryItem] = field(default_factory=list)
    # Placement in the VIP tiers, kept current by `_place_in_tier` after every change.
    vip_tier: str | None = None
    vip_tier_entered_at: datetime | None = None
    vip_upgrade_requirements: dict[str, int | None] = field(default_factory=dict)


@dataclass
class LoyaltyOrder:
    order_id: str
    email: str
    amount_cents: int
    currency: str
    status: str | None
    awarded_points: int = 0
    awarded: bool = False
    refunded_cents: int = 0
    reversed_points: int = 0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Fixed-window limit of `per_second` requests; 0 turns it off.

    Rates of 1 or more allow floor(rate) requests per one-second window; a rate below 1
    allows one request per 1/rate seconds.
    """

    def __init__(self, per_second: float, clock: Clock) -> None:
        if per_second < 0:
            raise ValueError(f"rate limit must not be negative, got {per_second}")
        self._clock = clock
        self._enabled = per_second > 0
        self._capacity = max(1, math.floor(per_second)) if self._enabled else 0
        self._window = 1.0 if per_second >= 1 or not self._enabled else 1.0 / per_second
        self._window_end = -math.inf
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> RateDecision:
        """Count one request and return whether it may proceed, with the headers to send."""
        if not self._enabled:
            return RateDecision(
                True, self._headers(ADVERTISED_RATE_LIMIT, ADVERTISED_RATE_LIMIT, 1)
            )
        with self._lock:
            now = self._clock.monotonic()
            if now >= self._window_end:
                self._window_end = now + self._window
                self._used = 0
            allowed = self._used < self._capacity
            if allowed:
                self._used += 1
            reset = max(1, math.ceil(self._window_end - now))
            return RateDecision(
                allowed, self._headers(self._capacity, self._capacity - self._used, reset)
            )

    def peek(self) -> dict[str, str]:
        """Return the current headers without counting a request."""
        if not self._enabled:
            return self._headers(ADVERTISED_RATE_LIMIT, ADVERTISED_RATE_LIMIT, 1)
        with self._lock:
            now = self._clock.monotonic()
            if now >= self._window_end:
                return self._headers(self._capacity, self._capacity, math.ceil(self._window))
            reset = max(1, math.ceil(self._window_end - now))
            return self._headers(self._capacity, self._capacity - self._used, reset)

    @staticmethod
    def _headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }


class YotpoState:
    """One emulated Yotpo Loyalty account."""

    def __init__(
        self,
        clock: Clock,
        points_per_dollar: Decimal = Decimal(1),
        vip_tiers: list[dict[str, Any]] | None = None,
        redemption_options: list[dict[str, Any]] | None = None,
    ) -> None:
        if points_per_dollar < 0:
            raise ValueError(f"points_per_dollar must not be negative, got {points_per_dollar}")
        self.lock = threading.RLock()
        self._clock = clock
        self.points_per_dollar = points_per_dollar
        self._vip_tiers = list(vip_tiers or [])
        self._tier_program = TierProgram(self._vip_tiers)
        self._redemption_options = list(redemption_options or [])
        self._customers: list[LoyaltyCustomer] = []
        # Customers by normalised e-mail, so that a lookup does not scan every customer.
        self._by_email: dict[str, LoyaltyCustomer] = {}
        # Customers by third_party_id (the Heartland customer id), which orders name.
        self._by_third_party_id: dict[str, LoyaltyCustomer] = {}
        self._orders: dict[str, LoyaltyOrder] = {}
        self._refund_ids: set[str] = set()
        self._refund_numbers = itertools.count(1)
        # Delayed redemptions by code: (customer, points, history action) until an order uses it.
        self._delayed: dict[str, tuple[LoyaltyCustomer, int, str]] = {}
        self._log: dict[str, list[dict[str, Any]]] = {
            "orders": [],
            "refunds": [],
            "adjustments": [],
            "customers": [],
        }

    # Orders, refunds and adjustments; each call is logged.

    def create_order(self, body: Mapping[str, Any]) -> None:
        with self.lock:
            self._logged("orders", body, self._create_order)

    def create_refund(self, body: Mapping[str, Any]) -> None:
        with self.lock:
            self._logged("refunds", body, self._create_refund)

    def adjust_points(self, body: Mapping[str, Any]) -> None:
        with self.lock:
            self._logged("adjustments", body, self._adjust_points)

    def _logged(
        self,
        kind: str,
        body: Mapping[str, Any],
        action: Callable[[Mapping[str, Any], dict[str, Any]], None],
    ) -> None:
        entry: dict[str, Any] = {
            "received_at": format_yotpo_time(self._clock.now()),
            "body": copy.deepcopy(dict(body)),
            "status": 200,
            "duplicate": False,
            "points": 0,
        }
        self._log[kind].append(entry)
        try:
            action(body, entry)
        except RequestError as error:
            entry["status"] = error.status
            entry["error"] = error.message
            raise

    def _create_order(self, body: Mapping[str, Any], entry: dict[str, Any]) -> None:
        email = _required_email(body, "customer_email")
        order_id = _required_id(body, "order_id")
        amount = _cents(body, "total_amount_cents")
        status = _optional_text(body, "status")
        currency = (_optional_text(body, "currency_code") or DEFAULT_CURRENCY).upper()
        awarding = is_awarding_status(status)

        existing = self._orders.get(order_id)
        if existing is not None:
            entry["duplicate"] = True
            if existing.awarded or not awarding:
                return
            # A repeat that moves an order to an awarding status awards it once.
            existing.status = status
            entry["points"] = self._award(existing)
            return

        customer = self._order_customer(body, email)
        if customer is None:
            now = self._clock.now()
            customer = LoyaltyCustomer(
                email=email.strip(), created_at=now, opted_in=True, opted_in_at=now
            )
            self._add_customer(customer)
        if customer.third_party_id is None and body.get("customer_id") is not None:
            self._set_third_party_id(customer, str(body["customer_id"]))
        nested = body.get("customer")
        if isinstance(nested, dict) and (nested.get("opted_in") or nested.get("opt_in")) is True:
            self._opt_in(customer, True)
        order = LoyaltyOrder(order_id, customer.email, amount, currency, status)
        self._orders[order_id] = order
        self._complete_delayed(body.get("coupon_code"))
        if awarding:
            entry["points"] = self._award(order)

    def _award(self, order: LoyaltyOrder) -> int:
        customer = self._customer_by_email(order.email)
        assert customer is not None
        now = self._clock.now()
        points = (
            order_points(order.amount_cents, self.points_per_dollar) if customer.opted_in else 0
        )
        order.awarded = True
        order.awarded_points = points
        customer.points_balance += points
        customer.points_earned += points
        customer.total_spend_cents += order.amount_cents
        customer.total_purchases += 1
        customer.last_purchase_at = now
        customer.history.append(
            HistoryItem(now, HISTORY_PURCHASE, points, HISTORY_APPROVED, order.order_id)
        )
        self._place_in_tier(customer)
        return points

    def _create_refund(self, body: Mapping[str, Any], entry: dict[str, Any]) -> None:
        order_id = _required_id(body, "order_id")
        amount = _cents(body, "total_amount_cents")
        refund_id = None if body.get("id") is None else _required_id(body, "id")
        if refund_id is not None and refund_id in self._refund_ids:
            entry["duplicate"] = True
            return
        order = self._orders.get(order_id)
        if order is None:
            raise _not_found(f"order {order_id} not found")
        currency = _optional_text(body, "currency")
        if currency is not None and currency.upper() != order.currency:
            raise _unprocessable(
                f"refund currency {currency} does not match order currency {order.currency}"
            )
        self._refund_ids.add(refund_id or f"refund-{next(self._refund_numbers)}")

        customer = self._customer_by_email(order.email)
        assert customer is not None
        order.refunded_cents += amount
        now_reversed = reversed_points(
            order.awarded_points, order.amount_cents, order.refunded_cents
        )
        removed = now_reversed - order.reversed_points
        order.reversed_points = now_reversed
        removed_from_balance = min(removed, customer.points_balance)
        customer.points_balance -= removed_from_balance
        customer.points_earned = max(0, customer.points_earned - removed)
        customer.total_spend_cents = max(0, customer.total_spend_cents - amount)
        customer.history.append(
            HistoryItem(
                self._clock.now(), HISTORY_REFUND, -removed_from_balance, HISTORY_APPROVED, order_id
            )
        )
        entry["points"] = -removed_from_balance
        self._place_in_tier(customer)

    def _adjust_points(self, body: Mapping[str, Any], entry: dict[str, Any]) -> None:
        customer = self._identified_customer(body)
        raw_amount = body.get("point_adjustment_amount")
        if isinstance(raw_amount, bool) or not isinstance(raw_amount, int):
            raise _unprocessable("point_adjustment_amount is required and must be an integer")
        title = _optional_text(body, "history_title") or HISTORY_ADJUSTMENT
        to_earned = body.get("apply_adjustment_to_points_earned", False)
        if not isinstance(to_earned, bool):
            raise _unprocessable("apply_adjustment_to_points_earned must be true or false")
        if customer.points_balance + raw_amount < 0:
            raise _unprocessable(
                f"customer has {customer.points_balance} points, cannot subtract {-raw_amount}"
            )
        customer.points_balance += raw_amount
        if to_earned:
            customer.points_earned = max(0, customer.points_earned + raw_amount)
        customer.history.append(HistoryItem(self._clock.now(), title, raw_amount, HISTORY_APPROVED))
        entry["points"] = raw_amount
        self._place_in_tier(customer)

    # Customers.

    def upsert_customer(self, body: Mapping[str, Any]) -> None:
        """Create or update a customer, matched by `id` (third_party_id) first, then e-mail.

        Every call is logged under `customers` in `records()`, rejected ones included.
        """
        with self.lock:
            self._logged("customers", body, self._upsert_customer)

    def _upsert_customer(self, body: Mapping[str, Any], entry: dict[str, Any]) -> None:
        email = _required_email(body, "email")
        third_party_id = None if body.get("id") is None else _required_id(body, "id")
        opted_in = body.get("opted_in")
        if opted_in is not None and not isinstance(opted_in, bool):
            raise _unprocessable("opted_in must be true, false or null")

        customer = None
        if third_party_id is not None:
            customer = self._customer_by_third_party_id(third_party_id)
        by_email = self._customer_by_email(email)
        if customer is None:
            customer = by_email
        elif by_email is not None and by_email is not customer:
            raise _unprocessable(f"e-mail {email.strip()} belongs to another customer")
        if customer is None:
            customer = LoyaltyCustomer(email=email.strip(), created_at=self._clock.now())
            customer.opted_in = False
            self._add_customer(customer)
            self._opt_in(customer, DEFAULT_OPT_IN)
            entry["created"] = True

        if normalize_email(customer.email) != normalize_email(email):
            # Orders name their customer by e-mail, so they follow the change.
            for order in self._orders.values():
                if normalize_email(order.email) == normalize_email(customer.email):
                    order.email = email.strip()
        if self._by_email.get(normalize_email(customer.email)) is customer:
            del self._by_email[normalize_email(customer.email)]
        customer.email = email.strip()
        self._by_email.setdefault(normalize_email(customer.email), customer)
        if third_party_id is not None:
            self._set_third_party_id(customer, third_party_id)
        for name in ("first_name", "last_name", "phone_number", "pos_account_id", "tags"):
            if name in body:
                setattr(customer, name, _optional_text(body, name))
        if "opted_in" in body:
            self._opt_in(customer, DEFAULT_OPT_IN if opted_in is None else opted_in)
        self._place_in_tier(customer)

    def find_customer(self, query: Mapping[str, str], with_history: bool) -> dict[str, Any]:
        """Return one customer by `customer_email`, `customer_id`, `pos_account_id` or phone."""
        with self.lock:
            customer = None
            if query.get("customer_email"):
                customer = self._customer_by_email(query["customer_email"])
            elif query.get("customer_id"):
                customer = self._customer_by_third_party_id(query["customer_id"])
            elif query.get("pos_account_id"):
                customer = self._find(lambda c: c.pos_account_id == query["pos_account_id"])
            elif query.get("phone_number"):
                customer = self._find(lambda c: c.phone_number == query["phone_number"])
            else:
                raise RequestError(
                    400,
                    "invalid_request",
                    "send one of customer_email, customer_id, pos_account_id, phone_number",
                )
            if customer is None:
                raise _not_found("customer not found")
            self._place_in_tier(customer)
            return _render_customer(customer, with_history)

    @property
    def clock(self) -> Clock:
        return self._clock

    # Redemptions (the HTTP side and the webhook are in `sandbox.redemptions`).

    def redeem(
        self, body: Mapping[str, Any], cost: int, action: str, code: str, delay: bool
    ) -> str:
        """Take `cost` points for a redemption, or hold them until an order uses `code`.

        Returns the customer's e-mail. Raises 422 when the balance is short and 404 for an
        unknown customer.
        """
        with self.lock:
            customer = self._identified_customer(body)
            if customer.points_balance < cost:
                raise _unprocessable(
                    f"customer has {customer.points_balance} points, the option costs {cost}"
                )
            if delay:
                # The code is issued now and shows in the history with 0 points until an
                # order uses it.
                self._delayed[code] = (customer, cost, action)
                customer.history.append(HistoryItem(self._clock.now(), action, 0, code))
            else:
                customer.points_balance -= cost
                customer.history.append(HistoryItem(self._clock.now(), action, -cost, code))
            return customer.email

    def _complete_delayed(self, coupon_codes: Any) -> None:
        if not isinstance(coupon_codes, str):
            return
        for code in (part.strip() for part in coupon_codes.split(",")):
            held = self._delayed.pop(code, None)
            if held is None:
                continue
            customer, cost, action = held
            taken = min(cost, customer.points_balance)
            customer.points_balance -= taken
            customer.history.append(HistoryItem(self._clock.now(), action, -taken, code))

    def set_redemption_options(self, options: list[dict[str, Any]]) -> None:
        with self.lock:
            self._redemption_options = copy.deepcopy(options)

    def customer_snapshot(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            customer = self._customer_by_email(email)
            return None if customer is None else _render_customer(customer, False)

    def vip_tiers(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._vip_tiers)

    def redemption_options(self, query: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Return the active options, or those one customer qualifies for.

        With `customer_email`, `customer_id` or `phone_number` in `query`, only options whose
        points cost (`amount`) the customer's balance covers are returned, and none while
        the customer is not opted in. An unknown customer is 404.
        """
        with self.lock:
            options = copy.deepcopy(self._redemption_options)
            customer = self._queried_customer(query or {})
            if customer is None:
                return options
            if not customer.opted_in:
                return []
            balance = customer.points_balance
            return [option for option in options if _points_cost(option) <= balance]

    def records(self) -> dict[str, Any]:
        """Return every order, refund, adjustment and customer write received, in arrival order."""
        with self.lock:
            return copy.deepcopy(self._log)

    def balances(self) -> dict[str, int]:
        """Return the points balance per normalized e-mail."""
        with self.lock:
            return {normalize_email(c.email): c.points_balance for c in self._customers}

    # Helpers, called with the lock held.

    def _find(self, test: Callable[[LoyaltyCustomer], bool]) -> LoyaltyCustomer | None:
        for customer in self._customers:
            if test(customer):
                return customer
        return None

    def _customer_by_email(self, email: str) -> LoyaltyCustomer | None:
        return self._by_email.get(normalize_email(email))

    def _add_customer(self, customer: LoyaltyCustomer) -> None:
        self._customers.append(customer)
        self._by_email.setdefault(normalize_email(customer.email), customer)
        if customer.third_party_id is not None:
            self._by_third_party_id.setdefault(customer.third_party_id, customer)

    def _customer_by_third_party_id(self, third_party_id: str) -> LoyaltyCustomer | None:
        return self._by_third_party_id.get(third_party_id)

    def _set_third_party_id(self, customer: LoyaltyCustomer, third_party_id: str) -> None:
        """Give `customer` a third_party_id; lookups by the id replaced find it no more.

        Two customers never share an id: orders and upserts look a customer up by the id
        first and set it only on the customer that lookup found, or when no customer has it.
        """
        old = customer.third_party_id
        if old is not None and self._by_third_party_id.get(old) is customer:
            del self._by_third_party_id[old]
        customer.third_party_id = third_party_id
        self._by_third_party_id.setdefault(third_party_id, customer)

    def _identified_customer(self, body: Mapping[str, Any]) -> LoyaltyCustomer:
        if isinstance(body.get("customer_email"), str) and body["customer_email"].strip():
            customer = self._customer_by_email(body["customer_email"])
        elif body.get("customer_id") is not None:
            third_party_id = str(body["customer_id"])
            customer = self._customer_by_third_party_id(third_party_id)
        else:
            raise _unprocessable("customer_email or customer_id is required")
        if customer is None:
            raise _not_found("customer not found")
        return customer

    def _order_customer(self, body: Mapping[str, Any], email: str) -> LoyaltyCustomer | None:
        """Find an order's customer by its `customer_id` (third_party_id) first, then e-mail."""
        raw_id = body.get("customer_id")
        if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id).strip():
            linked = str(raw_id).strip()
            customer = self._customer_by_third_party_id(linked)
            if customer is not None:
                return customer
        return self._customer_by_email(email)

    def _queried_customer(self, query: Mapping[str, str]) -> LoyaltyCustomer | None:
        """Return the customer a redemption options query names; None when it names none."""
        customer = None
        if query.get("customer_email"):
            customer = self._customer_by_email(query["customer_email"])
        elif query.get("customer_id"):
            customer = self._customer_by_third_party_id(query["customer_id"])
        elif query.get("phone_number"):
            customer = self._find(lambda c: c.phone_number == query["phone_number"])
        else:
            return None
        if customer is None:
            raise _not_found("customer not found")
        return customer

    def _place_in_tier(self, customer: LoyaltyCustomer) -> None:
        totals = TierTotals(
            points_earned=customer.points_earned,
            amount_spent_cents=customer.total_spend_cents,
            purchases_made=customer.total_purchases,
        )
        tier = self._tier_program.tier_for(totals)
        name = None if tier is None else str(tier.get("name"))
        if name != customer.vip_tier:
            customer.vip_tier = name
            customer.vip_tier_entered_at = None if name is None else self._clock.now()
        customer.vip_upgrade_requirements = self._tier_program.upgrade_requirements(totals)

    def _opt_in(self, customer: LoyaltyCustomer, opted_in: bool) -> None:
        if opted_in and not customer.opted_in:
            customer.opted_in_at = self._clock.now()
        if not opted_in:
            customer.opted_in_at = None
        customer.opted_in = opted_in


def _required_email(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or "@" not in value:
        raise _unprocessable(f"{key} is required and must be an e-mail address")
    return value


def _required_id(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise _unprocessable(f"{key} is required and must be text or an integer")
    return str(value).strip()


def _cents(body: Mapping[str, Any], key: str) -> int:
    """Read an integer amount in cents; digit strings are accepted as the vendor example uses."""
    value = body.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _unprocessable(f"{key} is required and must be a non-negative integer")
    return value


def _optional_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _unprocessable(f"{key} must be text")
    return str(value)


def _render_history(item: HistoryItem) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "created_at": format_yotpo_time(item.created_at),
        "date": item.created_at.astimezone(_MERCHANT_ZONE).date().isoformat(),
        "action": item.action,
        "points": item.points,
        "status": item.status,
    }
    if item.order_id is not None:
        rendered["order_ids"] = [item.order_id]
    return rendered


def _points_cost(option: Mapping[str, Any]) -> int:
    """Read an option's points cost, a number or digits as in the vendor's table."""
    amount = option.get("amount")
    if isinstance(amount, str) and amount.strip().isdigit():
        return int(amount.strip())
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        return int(amount)
    return 0


def _render_customer(customer: LoyaltyCustomer, with_history: bool) -> dict[str, Any]:
    def optional_time(moment: datetime | None) -> str | None:
        return None if moment is None else format_yotpo_time(moment)

    rendered: dict[str, Any] = {
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone_number": customer.phone_number,
        "points_balance": customer.points_balance,
        "points_earned": customer.points_earned,
        "total_spend_cents": customer.total_spend_cents,
        "total_purchases": customer.total_purchases,
        "perks_redeemed": 0,
        "last_purchase_at": optional_time(customer.last_purchase_at),
        "third_party_id": customer.third_party_id,
        "thirty_party_id": customer.third_party_id,
        "pos_account_id": customer.pos_account_id,
        "has_store_account": customer.third_party_id is not None,
        "credit_balance": "$0.00",
        "opt_in": customer.opted_in,
        "opted_in_at": optional_time(customer.opted_in_at),
        "vip_tier_name": customer.vip_tier,
        "vip_tier_entry_date": optional_time(customer.vip_tier_entered_at),
        "vip_tier_expiration": None,
        "vip_tier_actions_completed": {
            "points_earned": customer.points_earned,
            "amount_spent_cents": customer.total_spend_cents,
            "purchases_made": customer.total_purchases,
            "referrals_completed": 0,
        },
        "vip_tier_upgrade_requirements": {
            "points_needed": None,
            "amount_cents_needed": None,
            "purchases_needed": None,
            "referrals_needed": None,
        }
        | customer.vip_upgrade_requirements,
    }
    if with_history:
        rendered["history_items"] = [_render_history(item) for item in reversed(customer.history)]
    return rendered
