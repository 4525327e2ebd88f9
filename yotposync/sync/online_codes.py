"""The online codes job: codes redeemed in Yotpo become single-use Heartland coupons.

Codes reach the ledger two ways: the redemption-created webhook receiver, and this job's
reading of recently active customers' Yotpo history (a redemption row has negative points and
the code as its status). Each run then creates a single-use coupon for every new code and
switches off the coupons of codes already used on a completed ticket.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from yotposync.clients.heartland_coupons import OFFER_CODE_PREFIX, CouponSpec
from yotposync.errors import RejectedError
from yotposync.ledger import Ledger
from yotposync.ledger.offers import (
    CODE_ACTIVE,
    CODE_CLOSED,
    CODE_PENDING,
    CODE_SKIPPED,
    CODE_USED,
    OfferLedger,
)
from yotposync.logs import mask_email
from yotposync.sync.offers import (
    CEILING_SETTING,
    Offer,
    SkippedOption,
    is_online_code,
    name_states_discount,
    one_line,
    read_option,
)
from yotposync.sync.offers_job import CouponWriter

log = structlog.get_logger("yotposync.online_codes")

# History statuses that are states, not codes.
_HISTORY_STATES = frozenset(
    {"approved", "pending", "cancelled", "canceled", "expired", "declined", "rejected", "refunded"}
)


class CodeSource(Protocol):
    """The part of the Yotpo client this job uses."""

    def redemption_options(self, **filters: str | int | bool) -> list[dict[str, Any]]: ...

    def get_customer(
        self, *, email: str | None = None, with_history: bool = False
    ) -> dict[str, Any] | None: ...


@dataclass
class CodesSummary:
    """Counts for one run of the online codes job."""

    customers_read: int = 0
    found: int = 0
    created: int = 0
    skipped: int = 0
    closed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "customers_read": self.customers_read,
            "found": self.found,
            "created": self.created,
            "skipped": self.skipped,
            "closed": self.closed,
        }


def _points_cost(option: Mapping[str, Any] | None) -> int | None:
    """Return an option's points cost (`amount`, a number or a string of digits), or None."""
    amount = option.get("amount") if option is not None else None
    if isinstance(amount, str) and amount.strip().isdigit():
        return int(amount.strip())
    if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
        return amount
    return None


def history_codes(customer: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Return `(code, action, points spent)` for each redemption row in a Yotpo history.

    A redemption row takes points (or none yet, when its deduction is delayed) and has the
    code as its status, where other rows have a state such as "Approved".
    """
    found: list[tuple[str, str, int]] = []
    items = customer.get("history_items")
    if not isinstance(items, list):
        return found
    for item in items:
        if not isinstance(item, dict):
            continue
        points = item.get("points")
        status = item.get("status")
        # A delayed redemption shows 0 points until an order uses its code.
        if isinstance(points, bool) or not isinstance(points, int) or points > 0:
            continue
        if not isinstance(status, str):
            continue
        code = status.strip()
        if not is_online_code(code) or code.lower() in _HISTORY_STATES:
            continue
        found.append((code, str(item.get("action") or ""), -points))
    return found


# The end of the reason a code is skipped for when Yotpo does not list its option.
_NOT_LISTED = " is not among the redemption options, so its discount is unknown"


_REGISTER_CODE = re.compile(rf"{OFFER_CODE_PREFIX}\d+", re.IGNORECASE)


def _register_code_problem(code: str) -> str | None:
    """Say why a code may not get a single-use coupon when it has a register offer's form.

    Coupons are found by code, so a single-use coupon for `LOYALTY3102` would take over the
    register coupon that every customer redeeming option 3102 uses.
    """
    if _REGISTER_CODE.fullmatch(code.strip()):
        return (
            f"the code has the form of the register offers' codes ({OFFER_CODE_PREFIX}<option "
            "id>), so its coupon would replace an offer's shared coupon; give the customer "
            "the points back in Yotpo"
        )
    return None


class OnlineCodesJob:
    """Find codes redeemed online, make their coupons, and close the used ones."""

    def __init__(
        self,
        ledger: Ledger,
        yotpo: CodeSource,
        coupons: CouponWriter,
        *,
        clock: Callable[[], datetime],
        history_days: int,
        history_max_customers: int,
        max_discount_cents: int | None = None,
    ) -> None:
        self.ledger = ledger
        self.offers = OfferLedger(ledger)
        self.yotpo = yotpo
        self.coupons = coupons
        self.clock = clock
        self.max_discount_cents = max_discount_cents
        self.history_days = history_days
        self.history_max_customers = history_max_customers

    def run(self, *, should_stop: Callable[[], bool] = lambda: False) -> CodesSummary:
        started = time.monotonic()
        summary = CodesSummary()
        options = self.yotpo.redemption_options()
        if self.history_days > 0 and self.history_max_customers > 0:
            self._read_history(options, summary, should_stop)
        # A code skipped because its option was not listed gets its coupon once the option is
        # listed again: the customer paid for it, and the store could not accept it until then.
        # The same holds for a code skipped for a discount above offers.max_discount_cents,
        # once the setting or the option allows it.
        listed_again = [
            row
            for row in self.offers.codes_in_state(CODE_SKIPPED)
            if (str(row["reason"] or "").endswith(_NOT_LISTED) and self._is_listed(row, options))
            or (
                CEILING_SETTING in str(row["reason"] or "")
                and isinstance(self._offer_for(row, options), Offer)
            )
        ]
        for row in [*self.offers.codes_in_state(CODE_PENDING), *listed_again]:
            if should_stop():
                break
            self._create_coupon(row, options, summary)
        for row in self.offers.codes_in_state(CODE_USED):
            if should_stop():
                break
            self._close(row, summary)
        log.info(
            "online_codes_run", **summary.as_dict(), seconds=round(time.monotonic() - started, 3)
        )
        return summary

    def _read_history(
        self,
        options: list[dict[str, Any]],
        summary: CodesSummary,
        should_stop: Callable[[], bool],
    ) -> None:
        by_name = {str(o.get("name", "")).strip().lower(): o for o in options}
        known = self.offers.known_codes()
        emails = self.offers.recent_customer_emails(
            self.clock(), self.history_days, self.history_max_customers
        )
        for email in emails:
            if should_stop():
                return
            try:
                customer = self.yotpo.get_customer(email=email, with_history=True)
            except RejectedError as exc:
                # NOTE: Yotpo may return 400 instead of 404 for a customer it does not have,
                # such as a staff customer that is never enrolled.
                log.warning(
                    "online_code_history_unreadable",
                    customer=mask_email(email),
                    status=exc.status,
                    detail="Yotpo rejected the read of this history. The next run reads it again",
                )
                continue
            summary.customers_read += 1
            if customer is None:
                continue
            for code, action, spent in history_codes(customer):
                if code in known:
                    continue
                option = by_name.get(action.strip().lower())
                option_id = option.get("id") if option is not None else None
                with self.ledger.transaction():
                    self.offers.record_online_code(
                        code=code,
                        redemption_id=None,
                        option_id=option_id if isinstance(option_id, int) else None,
                        option_name=action or None,
                        email=email,
                        # What Yotpo took, or the option's cost while the deduction waits.
                        points_cost=spent or _points_cost(option),
                        source="history",
                        now=self.clock(),
                    )
                known.add(code)
                summary.found += 1
                log.info("online_code_found", code=code, customer=mask_email(email))

    def _create_coupon(
        self, row: dict[str, Any], options: list[dict[str, Any]], summary: CodesSummary
    ) -> None:
        code = str(row["code"])
        offer = _register_code_problem(code) or self._offer_for(row, options)
        if isinstance(offer, str):
            with self.ledger.transaction():
                self.offers.set_code_state(code, CODE_SKIPPED, self.clock(), reason=offer)
            summary.skipped += 1
            log.warning("online_code_skipped", code=code, reason=offer)
            return
        spec = CouponSpec(
            code=code,
            name=_coupon_name(offer, code),
            amount_cents=offer.amount_cents,
            percent=offer.percent,
            single_use=True,
        )
        cost = self._option_cost(row, offer)
        try:
            coupon_id = self.coupons.upsert(spec, row["coupon_id"]).coupon_id
        except RejectedError as exc:
            reason = f"Heartland rejected the coupon: {exc.reason}"
            with self.ledger.transaction():
                self.offers.set_code_state(code, CODE_SKIPPED, self.clock(), reason=reason)
            summary.skipped += 1
            log.error("online_code_rejected", code=code, status=exc.status, error=exc.reason)
            return
        with self.ledger.transaction():
            self.offers.set_code_state(
                code, CODE_ACTIVE, self.clock(), coupon_id=coupon_id, points_cost=cost
            )
        summary.created += 1
        log.info("online_code_coupon_created", code=code, coupon_id=coupon_id)

    def _option_cost(self, row: dict[str, Any], offer: Offer) -> int | None:
        """Return the points cost a return of a sale with this code may give back.

        It is the option's cost as Yotpo lists it, or as the offers job last copied it. The
        cost a webhook stated does not count, because a forged or malformed webhook could
        state any number, and a restore gives back a share of it. A code whose option is known
        nowhere keeps the cost it came with.
        """
        stated = row["points_cost"]
        if row["source"] == "history" and stated:
            # Read from the customer's Yotpo history: what Yotpo took for this code, which
            # stays right when the option's price changes later.
            return int(stated)
        known = offer.points_cost or self.offers.offer_points_cost(offer.option_id)
        if known and stated != known:
            log.warning(
                "online_code_cost_corrected",
                code=row["code"],
                stated=stated,
                option_cost=known,
                detail="the redemption named another points cost than its option has; the "
                "option's cost counts for returns",
            )
        return known or None

    def _offer_for(self, row: dict[str, Any], options: list[dict[str, Any]]) -> Offer | str:
        """Find the offer behind a code, or return why no coupon can be made for it."""
        option_id = row["option_id"]
        name = row["option_name"]
        raw = None
        for option in options:
            if option_id is not None and option.get("id") == option_id:
                raw = option
                break
            if option_id is None and name and str(option.get("name", "")).strip() == name:
                raw = option
                break
        if raw is not None:
            result = read_option(raw, max_discount_cents=self.max_discount_cents)
            if isinstance(result, SkippedOption):
                return f"option {result.option_id} ({result.name}): {result.reason}"
            return result
        if option_id is not None:
            stored = self._offer_from_ledger(int(option_id), name or "")
            if stored is not None:
                return stored
        shown = f"option {option_id}" if option_id is not None else f"offer {name!r}"
        return f"{shown}{_NOT_LISTED}"

    @staticmethod
    def _is_listed(row: dict[str, Any], options: list[dict[str, Any]]) -> bool:
        """Tell whether Yotpo lists the option of a code now, by id or else by name."""
        option_id, name = row["option_id"], row["option_name"]
        return any(
            (option_id is not None and option.get("id") == option_id)
            or (option_id is None and name and str(option.get("name", "")).strip() == name)
            for option in options
        )

    def _offer_from_ledger(self, option_id: int, name: str) -> Offer | None:
        """Rebuild an offer from the coupon written for it earlier, for a since-removed option."""
        spec = self.offers.offer_spec(option_id)
        if spec is None:
            return None
        amount = spec.get("amount")
        percent = spec.get("percent")
        if amount is not None:
            cents = int(Decimal(str(amount)) * 100)
            return Offer(option_id, name or str(spec.get("name", "")), 0, cents, None)
        if percent is not None:
            return Offer(
                option_id, name or str(spec.get("name", "")), 0, None, Decimal(str(percent))
            )
        return None

    def _close(self, row: dict[str, Any], summary: CodesSummary) -> None:
        code = str(row["code"])
        if row["coupon_id"] is not None:
            self.coupons.deactivate(int(row["coupon_id"]))
        with self.ledger.transaction():
            self.offers.set_code_state(
                code, CODE_CLOSED, self.clock(), reason=f"used on ticket {row['ticket_id']}"
            )
        summary.closed += 1
        log.info("online_code_closed", code=code, ticket_id=row["ticket_id"])


def _coupon_name(offer: Offer, code: str) -> str:
    """Name a code's single-use coupon after its option, unless that name misstates the discount."""
    if name_states_discount(offer):
        return f"{one_line(offer.name)}: online reward {code}"
    return f"Loyalty: {offer.discount_text()} off, online reward {code}"
