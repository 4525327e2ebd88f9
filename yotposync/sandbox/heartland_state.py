"""The Heartland Retail emulator's data: tickets, customers, locations, custom fields.

One re-entrant lock guards all of it, so the threaded server may call any method from any
thread. Methods return rendered dicts that callers must not change: rendered tickets and
customers are cached until the record changes.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from yotposync.sandbox.addresses import (
    ADDRESS_FIELDS,
    AddressRecord,
    new_address,
    parse_address_values,
    render_address,
)
from yotposync.sandbox.clock import Clock
from yotposync.sandbox.coupons import CouponBook
from yotposync.sandbox.filters import FieldSet
from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.indexes import ChangeCountingDict, IndexedRecords
from yotposync.sandbox.payloads import (
    Problems,
    parse_bool,
    parse_custom,
    parse_discount,
    parse_int,
    parse_line,
    parse_payment,
    parse_text,
    parse_time,
    parse_wall_clock,
    reject_unknown_keys,
)
from yotposync.sandbox.policies import (
    ERROR_NOT_FOUND,
    IGNORED_TICKET_CREATE_KEYS,
    STATUS_COMPLETE,
    STATUS_INCOMPLETE,
    STATUS_VOIDED,
)
from yotposync.sandbox.records import (
    CUSTOM_FIELD_FIELDS,
    CUSTOMER_FIELDS,
    GIFT_CARD_LINE,
    GROUP_CUSTOMER,
    GROUP_TICKET,
    ITEM_LINE,
    LINE_FIELDS,
    LOCATION_FIELDS,
    PAYMENT_FIELDS,
    SHIPPING_LINE,
    TAX_LINE,
    TICKET_FIELDS,
    TICKET_TYPE_RETURN,
    TICKET_TYPE_SALE,
    CustomerRecord,
    CustomFieldRecord,
    LineRecord,
    StationRecord,
    TicketRecord,
    render_custom_field,
    render_customer,
    render_line,
    render_location,
    render_payment,
    render_ticket,
)
from yotposync.sandbox.store import Store, standard_custom_fields, standard_locations

TICKET_CREATE_KEYS = frozenset(
    {
        "type",
        "public_id",
        "station_id",
        "source_location_id",
        "customer_id",
        "customer_public_id",
        "sales_rep",
        "parent_transaction_id",
        "status",
        "recalculate",
        "created_at",
        "completed_at",
        "local_completed_at",
        "custom",
        "coupon_id",
        "lines",
        "item_lines",
        "tax_lines",
        "shipping_lines",
        "gift_card_lines",
        "payments",
        "discounts",
    }
)
TICKET_UPDATE_KEYS = frozenset(
    {"status", "voided?", "customer_id", "sales_rep", "source_location_id", "custom"}
)
CUSTOMER_WRITE_KEYS = frozenset(
    {"public_id", "first_name", "last_name", "email", "active", "custom"}
)
# Line arrays on ticket create and the type each line gets when it names none.
LINE_ARRAYS = (
    ("lines", None),
    ("item_lines", ITEM_LINE),
    ("tax_lines", TAX_LINE),
    ("shipping_lines", SHIPPING_LINE),
    ("gift_card_lines", GIFT_CARD_LINE),
)


def not_found(kind: str, record_id: object) -> RequestError:
    return RequestError(404, ERROR_NOT_FOUND, f"{kind} {record_id} not found")


class HeartlandState:
    """Records of one emulated Heartland account, loaded from a generated store or empty."""

    def __init__(self, store: Store | None, clock: Clock) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.coupons = CouponBook(clock)
        if store is None:
            locations = standard_locations()
            custom_fields = standard_custom_fields()
            customers: list[CustomerRecord] = []
            tickets: list[TicketRecord] = []
            late: list[TicketRecord] = []
        else:
            locations = copy.deepcopy(store.locations)
            custom_fields = copy.deepcopy(store.custom_fields)
            customers = copy.deepcopy(store.customers)
            tickets = copy.deepcopy(store.tickets)
            late = copy.deepcopy(store.late_tickets)

        self._locations = {location.id: location for location in locations}
        self._stations = {
            station.id: station for location in locations for station in location.stations
        }
        self._custom_fields = custom_fields
        # These dicts count their changes, so the cached list snapshots below know when a
        # record was added or its rendering dropped, and rebuild themselves and their indexes.
        self._customers: ChangeCountingDict[int, CustomerRecord] = ChangeCountingDict(
            (customer.id, customer) for customer in customers
        )
        self._tickets: ChangeCountingDict[int, TicketRecord] = ChangeCountingDict(
            (ticket.id, ticket) for ticket in tickets
        )
        self._late = late

        self._rendered_tickets: ChangeCountingDict[int, dict[str, Any]] = ChangeCountingDict()
        self._rendered_customers: ChangeCountingDict[int, dict[str, Any]] = ChangeCountingDict()
        self._ticket_list: IndexedRecords | None = None
        self._ticket_list_stamp = (-1, -1)
        self._customer_list: IndexedRecords | None = None
        self._customer_list_stamp = (-1, -1)

        self._ticket_ids = itertools.count(_next_after(t.id for t in [*tickets, *late]))
        self._line_ids = itertools.count(_next_after(_line_and_adjustment_ids([*tickets, *late])))
        self._payment_ids = itertools.count(
            _next_after(p.id for t in [*tickets, *late] for p in t.payments)
        )
        self._customer_ids = itertools.count(_next_after(c.id for c in customers))
        self._address_ids = itertools.count(
            _next_after(a.id for c in customers for a in c.addresses)
        )
        self._custom_field_ids = itertools.count(_next_after(f.id for f in custom_fields))

    # Field sets for filters and sorts.

    def _custom_keys(self, group: str) -> list[str]:
        return [field.key for field in self._custom_fields if field.group_id == group]

    def ticket_fields(self) -> FieldSet:
        with self.lock:
            return FieldSet(TICKET_FIELDS, frozenset(self._custom_keys(GROUP_TICKET)))

    def customer_fields(self) -> FieldSet:
        with self.lock:
            return FieldSet(CUSTOMER_FIELDS, frozenset(self._custom_keys(GROUP_CUSTOMER)))

    # Reading.

    def ticket_snapshot(self) -> list[dict[str, Any]]:
        """Return every ticket rendered in full (with lines, payments and include-only fields).

        The list is sorted by `(updated_at, id)` and indexed for list requests. It is shared
        between callers until a ticket changes, so callers must not change it.
        """
        with self.lock:
            stamp = (self._tickets.writes, self._rendered_tickets.removals)
            if self._ticket_list is None or stamp != self._ticket_list_stamp:
                rendered = [self._render_ticket(ticket) for ticket in self._tickets.values()]
                self._ticket_list = IndexedRecords(rendered, order_field="updated_at")
                self._ticket_list_stamp = stamp
            return self._ticket_list

    def get_ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.lock:
            return self._render_ticket(self._ticket(ticket_id))

    def ticket_lines(self, ticket_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [render_line(line) for line in self._ticket(ticket_id).lines]

    def get_line(self, ticket_id: int, line_id: int) -> dict[str, Any]:
        with self.lock:
            for line in self._ticket(ticket_id).lines:
                if line.id == line_id:
                    return render_line(line)
            raise not_found("line", line_id)

    def ticket_payments(self, ticket_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [render_payment(payment) for payment in self._ticket(ticket_id).payments]

    def get_payment(self, ticket_id: int, payment_id: int) -> dict[str, Any]:
        with self.lock:
            for payment in self._ticket(ticket_id).payments:
                if payment.id == payment_id:
                    return render_payment(payment)
            raise not_found("payment", payment_id)

    def customer_snapshot(self) -> list[dict[str, Any]]:
        """Return every customer rendered and indexed, shared until a customer changes."""
        with self.lock:
            stamp = (self._customers.writes, self._rendered_customers.removals)
            if self._customer_list is None or stamp != self._customer_list_stamp:
                rendered = [self._render_customer(c) for c in self._customers.values()]
                self._customer_list = IndexedRecords(rendered, order_field="updated_at")
                self._customer_list_stamp = stamp
            return self._customer_list

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        with self.lock:
            return self._render_customer(self._customer(customer_id))

    def location_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [render_location(location) for location in self._locations.values()]

    def get_location(self, location_id: int) -> dict[str, Any]:
        with self.lock:
            location = self._locations.get(location_id)
            if location is None:
                raise not_found("location", location_id)
            return render_location(location)

    def custom_field_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [render_custom_field(field) for field in self._custom_fields]

    def get_custom_field(self, field_id: int) -> dict[str, Any]:
        with self.lock:
            for definition in self._custom_fields:
                if definition.id == field_id:
                    return render_custom_field(definition)
            raise not_found("custom field", field_id)

    def health(self) -> dict[str, Any]:
        with self.lock:
            return {
                "status": "ok",
                "tickets": len(self._tickets),
                "customers": len(self._customers),
                "late_tickets_held": len(self._late),
            }

    # Tickets: writes.

    def create_ticket(self, body: dict[str, Any]) -> int:
        """Create a ticket from the nested shape or the vendor importer shape; return its id."""
        with self.lock:
            now = self._clock.now()
            problems = Problems()
            reject_unknown_keys(body, TICKET_CREATE_KEYS | IGNORED_TICKET_CREATE_KEYS, problems)
            ticket_type = body.get("type", TICKET_TYPE_SALE)
            if ticket_type not in (TICKET_TYPE_SALE, TICKET_TYPE_RETURN):
                problems.add("type", f"must be {TICKET_TYPE_SALE} or {TICKET_TYPE_RETURN}")
            station = self._station_reference(body.get("station_id"), problems)
            location_id = self._location_reference(body, station, problems)
            customer_id = self._customer_reference(body, problems)
            parent_id = self._parent_reference(body.get("parent_transaction_id"), problems)
            public_id = self._new_public_id(body.get("public_id"), problems)
            sales_rep = parse_text(body.get("sales_rep") or "", "sales_rep", problems)
            status = body.get("status") or STATUS_INCOMPLETE
            if status not in (STATUS_COMPLETE, STATUS_INCOMPLETE):
                problems.add("status", f"must be {STATUS_COMPLETE} or {STATUS_INCOMPLETE}")
            recalculate = parse_bool(body.get("recalculate", True), "recalculate", problems)
            created_at = _optional_time(body, "created_at", problems) or now
            completed_at = _optional_time(body, "completed_at", problems) or now
            local_completed_at = None
            if body.get("local_completed_at") is not None:
                local_completed_at = parse_wall_clock(
                    body["local_completed_at"], "local_completed_at", problems
                )
            custom = parse_custom(body, frozenset(self._custom_keys(GROUP_TICKET)), problems)
            coupon_id = None
            if body.get("coupon_id") is not None:
                coupon_id = parse_int(body["coupon_id"], "coupon_id", problems)
            lines = self._parse_lines(body, recalculate is False, now, problems)
            payments = self._parse_array(body, "payments", problems)
            discounts = self._parse_array(body, "discounts", problems)
            parsed_payments = [
                parse_payment(raw, f"payments[{i}]", now, self._next_payment_id, problems)
                for i, raw in enumerate(payments)
            ]
            parsed_discounts = [
                parse_discount(raw, f"discounts[{i}]", problems) for i, raw in enumerate(discounts)
            ]
            problems.raise_if_any()
            assert station is not None and location_id is not None
            if coupon_id is not None:
                item_cents = sum(
                    line.value_cents for line in lines if line.type == ITEM_LINE and not line.voided
                )
                parsed_discounts.append(self.coupons.discount_for(coupon_id, item_cents))

            ticket_id = next(self._ticket_ids)
            ticket = TicketRecord(
                id=ticket_id,
                public_id=public_id or str(ticket_id),
                type=str(ticket_type),
                status=STATUS_INCOMPLETE,
                station_id=station.id,
                source_location_id=location_id,
                created_at=created_at,
                updated_at=now,
                customer_id=customer_id,
                sales_rep=sales_rep or "",
                parent_id=parent_id,
                custom=custom,
                coupon_id=coupon_id,
                lines=lines,
                payments=[payment for payment in parsed_payments if payment is not None],
                discounts=[discount for discount in parsed_discounts if discount is not None],
                recalculate=recalculate is not False,
            )
            if status == STATUS_COMPLETE:
                self._complete(ticket, completed_at, local_completed_at)
            self._tickets[ticket_id] = ticket
            return ticket_id

    def update_ticket(self, ticket_id: int, body: dict[str, Any]) -> None:
        """Apply a partial update: complete, void, customer, sales rep, location, custom."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            problems = Problems()
            reject_unknown_keys(body, TICKET_UPDATE_KEYS, problems)
            status = body.get("status")
            if status is not None and status not in (
                STATUS_COMPLETE,
                STATUS_INCOMPLETE,
                STATUS_VOIDED,
            ):
                problems.add("status", f"must be {STATUS_COMPLETE} or {STATUS_VOIDED}")
            void_flag = None
            if "voided?" in body:
                void_flag = parse_bool(body["voided?"], "voided?", problems)
            wants_void = status == STATUS_VOIDED or void_flag is True
            if ticket.voided:
                for key, value in body.items():
                    repeats_void = (key == "voided?" and value is True) or (
                        key == "status" and value == STATUS_VOIDED
                    )
                    if not repeats_void:
                        problems.add(key, "the ticket is voided and cannot change")
            if ticket.completed and status == STATUS_INCOMPLETE:
                problems.add("status", "a completed ticket cannot be reopened")
            changes: dict[str, Any] = {}
            if "customer_id" in body:
                changes["customer_id"] = self._optional_customer_id(body["customer_id"], problems)
            if "sales_rep" in body:
                changes["sales_rep"] = parse_text(body["sales_rep"] or "", "sales_rep", problems)
            if "source_location_id" in body:
                location_id = parse_int(body["source_location_id"], "source_location_id", problems)
                if location_id is not None and location_id not in self._locations:
                    problems.add("source_location_id", f"location {location_id} not found")
                changes["source_location_id"] = location_id
            custom = parse_custom(body, frozenset(self._custom_keys(GROUP_TICKET)), problems)
            problems.raise_if_any()

            changed = False
            for name, value in changes.items():
                if getattr(ticket, name) != value:
                    setattr(ticket, name, value)
                    changed = True
            for key, value in custom.items():
                if ticket.custom.get(key) != value:
                    ticket.custom[key] = value
                    changed = True
            if status == STATUS_COMPLETE and not ticket.completed:
                self._complete(ticket, self._clock.now(), None)
                changed = True
            if wants_void and not ticket.voided:
                ticket.voided = True
                if ticket.status != STATUS_COMPLETE:
                    ticket.status = STATUS_VOIDED
                changed = True
            if changed:
                self._touch(ticket)

    def add_line(self, ticket_id: int, body: dict[str, Any]) -> int:
        with self.lock:
            ticket = self._writable_ticket(ticket_id)
            now = self._clock.now()
            problems = Problems()
            line = parse_line(
                body, "line", None, not ticket.recalculate, now, self._next_line_id, problems
            )
            problems.raise_if_any()
            assert line is not None
            ticket.lines.append(line)
            self._touch(ticket)
            return line.id

    def add_payment(self, ticket_id: int, body: dict[str, Any]) -> int:
        with self.lock:
            ticket = self._writable_ticket(ticket_id)
            now = self._clock.now()
            problems = Problems()
            payment = parse_payment(body, "payment", now, self._next_payment_id, problems)
            problems.raise_if_any()
            assert payment is not None
            ticket.payments.append(payment)
            self._touch(ticket)
            return payment.id

    def release_late(self) -> int:
        """Insert the held-back late tickets now: old `completed_at`, `updated_at` now."""
        with self.lock:
            now = self._clock.now()
            released = self._late
            self._late = []
            for ticket in released:
                ticket.updated_at = now
                self._tickets[ticket.id] = ticket
            return len(released)

    # Customers: writes.

    def create_customer(self, body: dict[str, Any]) -> int:
        with self.lock:
            now = self._clock.now()
            problems = Problems()
            reject_unknown_keys(body, CUSTOMER_WRITE_KEYS, problems)
            first_name = _required_name(body, "first_name", problems)
            last_name = _required_name(body, "last_name", problems)
            email = _optional_email(body, problems)
            active = parse_bool(body.get("active", True), "active", problems)
            custom = parse_custom(body, frozenset(self._custom_keys(GROUP_CUSTOMER)), problems)
            public_id = None
            if body.get("public_id") is not None:
                public_id = parse_text(body["public_id"], "public_id", problems)
                if public_id is not None and self._customer_by_public_id(public_id) is not None:
                    problems.add("public_id", f"{public_id!r} is already taken")
            problems.raise_if_any()
            customer_id = next(self._customer_ids)
            self._customers[customer_id] = CustomerRecord(
                id=customer_id,
                public_id=public_id or f"C-{customer_id}",
                first_name=first_name or "",
                last_name=last_name or "",
                email=email,
                created_at=now,
                updated_at=now,
                active=active is not False,
                custom=custom,
            )
            return customer_id

    def update_customer(self, customer_id: int, body: dict[str, Any]) -> None:
        with self.lock:
            customer = self._live_customer(customer_id)
            problems = Problems()
            reject_unknown_keys(body, CUSTOMER_WRITE_KEYS, problems)
            changes: dict[str, Any] = {}
            for name in ("first_name", "last_name"):
                if name in body:
                    changes[name] = _required_name(body, name, problems)
            if "email" in body:
                changes["email"] = _optional_email(body, problems)
            if "active" in body:
                changes["active"] = parse_bool(body["active"], "active", problems)
            if "public_id" in body:
                public_id = parse_text(body["public_id"], "public_id", problems)
                holder = None if public_id is None else self._customer_by_public_id(public_id)
                if holder is not None and holder.id != customer_id:
                    problems.add("public_id", f"{public_id!r} is already taken")
                changes["public_id"] = public_id
            custom = parse_custom(body, frozenset(self._custom_keys(GROUP_CUSTOMER)), problems)
            problems.raise_if_any()

            changed = False
            for name, value in changes.items():
                if getattr(customer, name) != value:
                    setattr(customer, name, value)
                    changed = True
            for key, value in custom.items():
                if customer.custom.get(key) != value:
                    customer.custom[key] = value
                    changed = True
            if changed:
                customer.updated_at = self._clock.now()
                self._rendered_customers.pop(customer_id, None)
                for ticket in self._tickets.values():
                    if ticket.customer_id == customer_id:
                        self._rendered_tickets.pop(ticket.id, None)

    def delete_customer(self, customer_id: int) -> None:
        """Mark a customer deleted: it stays readable and listed, with `deleted_at` set."""
        with self.lock:
            customer = self._live_customer(customer_id)
            customer.deleted_at = self._clock.now()
            self._touch_customer(customer)

    def merge_customers(self, source_id: int, target_id: int) -> int:
        """Merge one customer into another; return how many tickets moved to the target.

        The source's tickets name the target from now on (each one's `updated_at` moves),
        and the source is deleted.
        """
        with self.lock:
            if source_id == target_id:
                raise RequestError(
                    422, "validation_error", "a customer cannot be merged into itself"
                )
            source = self._live_customer(source_id)
            target = self._live_customer(target_id)
            moved = 0
            for ticket in self._tickets.values():
                if ticket.customer_id == source.id:
                    ticket.customer_id = target.id
                    self._touch(ticket)
                    moved += 1
            source.deleted_at = self._clock.now()
            self._touch_customer(source)
            return moved

    # Customer addresses.

    def customer_addresses(self, customer_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [render_address(a) for a in self._customer(customer_id).addresses]

    def get_address(self, customer_id: int, address_id: int) -> dict[str, Any]:
        with self.lock:
            return render_address(self._address(customer_id, address_id))

    def create_address(self, customer_id: int, body: dict[str, Any]) -> int:
        """Add an address to a customer; the customer's `updated_at` moves."""
        with self.lock:
            customer = self._live_customer(customer_id)
            problems = Problems()
            values = parse_address_values(body, problems)
            problems.raise_if_any()
            address = new_address(
                customer_id, values, self._clock.now(), lambda: next(self._address_ids)
            )
            customer.addresses.append(address)
            self._touch_customer(customer)
            return address.id

    def update_address(self, customer_id: int, address_id: int, body: dict[str, Any]) -> None:
        """Change an address; the customer's `updated_at` moves when a value changes."""
        with self.lock:
            customer = self._live_customer(customer_id)
            address = self._address(customer_id, address_id)
            problems = Problems()
            values = parse_address_values(body, problems)
            problems.raise_if_any()
            changed = False
            for key, value in values.items():
                if getattr(address, key) != value:
                    setattr(address, key, value)
                    changed = True
            if changed:
                address.updated_at = self._clock.now()
                self._touch_customer(customer)

    def create_custom_field(self, body: dict[str, Any]) -> int:
        """Define a custom field; the key is derived from the name when not given."""
        with self.lock:
            problems = Problems()
            allowed = frozenset({"group_id", "name", "key", "validation_type"})
            reject_unknown_keys(body, allowed, problems)
            group_id = body.get("group_id")
            if group_id not in (GROUP_CUSTOMER, GROUP_TICKET):
                problems.add("group_id", f"must be {GROUP_CUSTOMER} or {GROUP_TICKET}")
            name = parse_text(body.get("name"), "name", problems)
            if name is not None and not name.strip():
                problems.add("name", "must not be empty")
            key = body.get("key")
            if key is None and name:
                key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            key = parse_text(key, "key", problems) if key is not None else None
            if key is not None and key in self._custom_keys(str(group_id)):
                problems.add("key", f"{key!r} is already defined for {group_id}")
            validation_type = parse_text(
                body.get("validation_type", "text"), "validation_type", problems
            )
            problems.raise_if_any()
            field_id = next(self._custom_field_ids)
            self._custom_fields.append(
                CustomFieldRecord(
                    id=field_id,
                    group_id=str(group_id),
                    key=key or "",
                    name=name or "",
                    validation_type=validation_type or "text",
                )
            )
            self._rendered_tickets.clear()
            self._rendered_customers.clear()
            return field_id

    # Helpers, called with the lock held.

    def _ticket(self, ticket_id: int) -> TicketRecord:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            raise not_found("ticket", ticket_id)
        return ticket

    def _writable_ticket(self, ticket_id: int) -> TicketRecord:
        ticket = self._ticket(ticket_id)
        if ticket.voided:
            raise RequestError(
                422,
                "validation_error",
                f"ticket {ticket_id} is voided and cannot change",
                {"voided?": "ticket is voided"},
            )
        return ticket

    def _customer(self, customer_id: int) -> CustomerRecord:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise not_found("customer", customer_id)
        return customer

    def _live_customer(self, customer_id: int) -> CustomerRecord:
        """Return a customer that may be changed: a deleted one is 404 to writes."""
        customer = self._customer(customer_id)
        if customer.deleted_at is not None:
            raise RequestError(404, ERROR_NOT_FOUND, f"customer {customer_id} was deleted")
        return customer

    def _address(self, customer_id: int, address_id: int) -> AddressRecord:
        for address in self._customer(customer_id).addresses:
            if address.id == address_id:
                return address
        raise not_found("address", address_id)

    def _touch_customer(self, customer: CustomerRecord) -> None:
        customer.updated_at = self._clock.now()
        self._rendered_customers.pop(customer.id, None)
        for ticket in self._tickets.values():
            if ticket.customer_id == customer.id:
                self._rendered_tickets.pop(ticket.id, None)

    def _customer_by_public_id(self, public_id: str) -> CustomerRecord | None:
        for customer in self._customers.values():
            if customer.public_id == public_id:
                return customer
        return None

    def _render_ticket(self, ticket: TicketRecord) -> dict[str, Any]:
        rendered = self._rendered_tickets.get(ticket.id)
        if rendered is None:
            customer = (
                None if ticket.customer_id is None else self._customers.get(ticket.customer_id)
            )
            name = None if customer is None else customer.display_name
            rendered = render_ticket(ticket, name, self._custom_keys(GROUP_TICKET))
            self._rendered_tickets[ticket.id] = rendered
        return rendered

    def _render_customer(self, customer: CustomerRecord) -> dict[str, Any]:
        rendered = self._rendered_customers.get(customer.id)
        if rendered is None:
            rendered = render_customer(customer, self._custom_keys(GROUP_CUSTOMER))
            self._rendered_customers[customer.id] = rendered
        return rendered

    def _touch(self, ticket: TicketRecord) -> None:
        ticket.updated_at = self._clock.now()
        self._rendered_tickets.pop(ticket.id, None)

    def _complete(
        self, ticket: TicketRecord, completed_at: datetime, local: datetime | None
    ) -> None:
        if ticket.coupon_id is not None:
            self.coupons.use(ticket.coupon_id, ticket.id)
        ticket.status = STATUS_COMPLETE
        ticket.completed = True
        ticket.completed_at = completed_at
        if local is None:
            station = self._stations[ticket.station_id]
            zone = ZoneInfo(self._locations[station.location_id].time_zone)
            local = completed_at.astimezone(zone).replace(tzinfo=None)
        ticket.local_completed_at = local

    def _next_line_id(self) -> int:
        return next(self._line_ids)

    def _next_payment_id(self) -> int:
        return next(self._payment_ids)

    def _station_reference(self, raw: Any, problems: Problems) -> StationRecord | None:
        if raw is None:
            problems.add("station_id", "is required")
            return None
        station_id = parse_int(raw, "station_id", problems)
        if station_id is None:
            return None
        station = self._stations.get(station_id)
        if station is None:
            problems.add("station_id", f"station {station_id} not found")
        return station

    def _location_reference(
        self, body: dict[str, Any], station: StationRecord | None, problems: Problems
    ) -> int | None:
        raw = body.get("source_location_id")
        if raw is None:
            return None if station is None else station.location_id
        location_id = parse_int(raw, "source_location_id", problems)
        if location_id is not None and location_id not in self._locations:
            problems.add("source_location_id", f"location {location_id} not found")
            return None
        return location_id

    def _customer_reference(self, body: dict[str, Any], problems: Problems) -> int | None:
        if body.get("customer_public_id") is not None:
            public_id = str(body["customer_public_id"])
            customer = self._customer_by_public_id(public_id)
            if customer is None:
                problems.add("customer_public_id", f"customer {public_id!r} not found")
                return None
            return customer.id
        return self._optional_customer_id(body.get("customer_id"), problems)

    def _optional_customer_id(self, raw: Any, problems: Problems) -> int | None:
        if raw is None:
            return None
        customer_id = parse_int(raw, "customer_id", problems)
        if customer_id is not None and customer_id not in self._customers:
            problems.add("customer_id", f"customer {customer_id} not found")
        return customer_id

    def _parent_reference(self, raw: Any, problems: Problems) -> int | None:
        if raw is None:
            return None
        parent_id = parse_int(raw, "parent_transaction_id", problems)
        if parent_id is not None and parent_id not in self._tickets:
            problems.add("parent_transaction_id", f"ticket {parent_id} not found")
        return parent_id

    def _new_public_id(self, raw: Any, problems: Problems) -> str | None:
        if raw is None:
            return None
        public_id = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
        if public_id is None:
            problems.add("public_id", "must be text")
        elif any(ticket.public_id == public_id for ticket in self._tickets.values()):
            problems.add("public_id", f"{public_id!r} is already taken")
        return public_id

    def _parse_array(self, body: dict[str, Any], key: str, problems: Problems) -> list[Any]:
        raw = body.get(key)
        if raw is None:
            return []
        if not isinstance(raw, list):
            problems.add(key, "must be an array")
            return []
        return raw

    def _parse_lines(
        self, body: dict[str, Any], keep_given_value: bool, now: datetime, problems: Problems
    ) -> list[LineRecord]:
        lines: list[LineRecord] = []
        for key, default_type in LINE_ARRAYS:
            for index, raw in enumerate(self._parse_array(body, key, problems)):
                line = parse_line(
                    raw,
                    f"{key}[{index}]",
                    default_type,
                    keep_given_value,
                    now,
                    self._next_line_id,
                    problems,
                )
                if line is not None:
                    lines.append(line)
        return lines


def _next_after(ids: Iterable[int]) -> int:
    return max(ids, default=0) + 1


def _line_and_adjustment_ids(tickets: list[TicketRecord]) -> Iterator[int]:
    for ticket in tickets:
        for line in ticket.lines:
            yield line.id
            for adjustment in line.adjustments:
                yield adjustment.id


def _optional_time(body: dict[str, Any], key: str, problems: Problems) -> datetime | None:
    value = body.get(key)
    return None if value is None else parse_time(value, key, problems)


def _required_name(body: dict[str, Any], key: str, problems: Problems) -> str | None:
    value = body.get(key)
    if value is None:
        problems.add(key, "is required")
        return None
    text = parse_text(value, key, problems)
    if text is not None and not text.strip():
        problems.add(key, "must not be empty")
    return text


def _optional_email(body: dict[str, Any], problems: Problems) -> str | None:
    value = body.get("email")
    if value is None:
        return None
    return parse_text(value, "email", problems)


# Fields that list endpoints other than tickets and customers may filter and sort on.
LINE_FIELD_SET = FieldSet(LINE_FIELDS, frozenset())
PAYMENT_FIELD_SET = FieldSet(PAYMENT_FIELDS, frozenset())
LOCATION_FIELD_SET = FieldSet(LOCATION_FIELDS, frozenset())
CUSTOM_FIELD_FIELD_SET = FieldSet(CUSTOM_FIELD_FIELDS, frozenset())
ADDRESS_FIELD_SET = FieldSet(ADDRESS_FIELDS, frozenset())
