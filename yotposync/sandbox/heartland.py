"""The Heartland Retail emulator as a WSGI application, serving `/api/...` and `/_sandbox/...`.

Every path needs `Authorization: Bearer <token>`. Lists return `{"results", "total",
"pages"}`; creates return 201 with a `Location` header and an empty body.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from yotposync.sandbox.coupons import COUPON_FIELD_SET
from yotposync.sandbox.filters import FieldSet
from yotposync.sandbox.heartland_state import (
    ADDRESS_FIELD_SET,
    CUSTOM_FIELD_FIELD_SET,
    LINE_FIELD_SET,
    LOCATION_FIELD_SET,
    PAYMENT_FIELD_SET,
    HeartlandState,
)
from yotposync.sandbox.httpkit import RequestError, json_response, read_json_object
from yotposync.sandbox.listing import ListQuery, apply_only, page_envelope, parse_list_query
from yotposync.sandbox.policies import (
    ERROR_INVALID_REQUEST,
    ERROR_NOT_FOUND,
    ERROR_UNAUTHORIZED,
)
from yotposync.sandbox.records import TICKET_INCLUDES

log = logging.getLogger(__name__)

_URLS = Map(
    [
        Rule("/api/sales/tickets", endpoint="tickets", methods=["GET", "POST"]),
        Rule("/api/sales/tickets/<int:ticket_id>", endpoint="ticket", methods=["GET", "PUT"]),
        Rule("/api/sales/tickets/<int:ticket_id>/lines", endpoint="lines", methods=["GET", "POST"]),
        Rule("/api/sales/tickets/<int:ticket_id>/lines/<int:line_id>", endpoint="line"),
        Rule(
            "/api/sales/tickets/<int:ticket_id>/payments",
            endpoint="payments",
            methods=["GET", "POST"],
        ),
        Rule("/api/sales/tickets/<int:ticket_id>/payments/<int:payment_id>", endpoint="payment"),
        Rule("/api/customers", endpoint="customers", methods=["GET", "POST"]),
        Rule(
            "/api/customers/<int:customer_id>",
            endpoint="customer",
            methods=["GET", "PUT", "DELETE"],
        ),
        Rule(
            "/api/customers/<int:customer_id>/addresses",
            endpoint="addresses",
            methods=["GET", "POST"],
        ),
        Rule(
            "/api/customers/<int:customer_id>/addresses/<int:address_id>",
            endpoint="address",
            methods=["GET", "PUT"],
        ),
        Rule(
            "/_sandbox/customers/<int:customer_id>/merge",
            endpoint="merge_customer",
            methods=["POST"],
        ),
        Rule("/api/locations", endpoint="locations"),
        Rule("/api/locations/<int:location_id>", endpoint="location"),
        Rule("/api/custom_fields", endpoint="custom_fields", methods=["GET", "POST"]),
        Rule("/api/custom_fields/<int:field_id>", endpoint="custom_field"),
        Rule("/api/coupons", endpoint="coupons", methods=["GET", "POST"]),
        Rule("/api/coupons/<int:coupon_id>", endpoint="coupon", methods=["GET", "PUT"]),
        Rule("/_sandbox/release-late", endpoint="release_late", methods=["POST"]),
        Rule("/_sandbox/health", endpoint="health"),
    ]
)

_TICKET_ONLY_INCLUDES = ("subtotal", "tax_total", "lines", "payments")


def heartland_error(error: RequestError) -> Response:
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    return json_response(body, error.status)


def _shape_ticket(record: Mapping[str, Any], query: ListQuery) -> dict[str, Any]:
    """Drop the fields a client gets only with `_include[]`, then apply `_only[]`."""
    shaped = {
        key: value
        for key, value in record.items()
        if key not in _TICKET_ONLY_INCLUDES or key in query.include
    }
    if query.only is None:
        return shaped
    selected = apply_only(shaped, query.only)
    for name in query.include:
        if name in shaped:
            selected[name] = shaped[name]
    return selected


def _shape_plain(record: Mapping[str, Any], query: ListQuery) -> dict[str, Any]:
    return apply_only(record, query.only)


def _shape_location(record: Mapping[str, Any], query: ListQuery) -> dict[str, Any]:
    shaped = {k: v for k, v in record.items() if k != "stations" or "stations" in query.include}
    if query.only is not None:
        selected = apply_only(shaped, query.only)
        if "stations" in shaped:
            selected["stations"] = shaped["stations"]
        return selected
    return shaped


class HeartlandApp:
    """WSGI application over one `HeartlandState`."""

    def __init__(self, state: HeartlandState, token: str) -> None:
        self.state = state
        self._token = token

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if not self._authorized(request):
            return heartland_error(
                RequestError(
                    401,
                    ERROR_UNAUTHORIZED,
                    "missing or invalid API token: send 'Authorization: Bearer <token>'",
                )
            )
        adapter = _URLS.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match()
            handler = getattr(self, f"_{endpoint}")
            response: Response = handler(request, **arguments)
            return response
        except RequestError as error:
            return heartland_error(error)
        except MethodNotAllowed:
            message = f"method {request.method} is not allowed on {request.path}"
            return heartland_error(RequestError(405, ERROR_INVALID_REQUEST, message))
        except NotFound:
            return heartland_error(
                RequestError(404, ERROR_NOT_FOUND, f"no resource at {request.path}")
            )
        except HTTPException as exc:
            return heartland_error(
                RequestError(exc.code or 500, ERROR_INVALID_REQUEST, exc.description or "")
            )
        except Exception:
            log.exception("heartland emulator failed on %s %s", request.method, request.path)
            message = "the sandbox failed on this request; see its log"
            return heartland_error(RequestError(500, "internal_error", message))

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self._token.encode())

    def _list(
        self,
        request: Request,
        records: list[dict[str, Any]],
        fields: FieldSet,
        includes: frozenset[str],
        shape: Callable[[Mapping[str, Any], ListQuery], dict[str, Any]],
    ) -> Response:
        query = parse_list_query(request.args, fields, includes)
        return json_response(page_envelope(records, query, fields, shape))

    @staticmethod
    def _created(location: str) -> Response:
        response = Response(b"", status=201)
        response.headers["Location"] = location
        return response

    # Tickets.

    def _tickets(self, request: Request) -> Response:
        if request.method == "POST":
            ticket_id = self.state.create_ticket(read_json_object(request, ERROR_INVALID_REQUEST))
            return self._created(f"/api/sales/tickets/{ticket_id}")
        return self._list(
            request,
            self.state.ticket_snapshot(),
            self.state.ticket_fields(),
            TICKET_INCLUDES,
            _shape_ticket,
        )

    def _ticket(self, request: Request, ticket_id: int) -> Response:
        if request.method == "PUT":
            self.state.update_ticket(ticket_id, read_json_object(request, ERROR_INVALID_REQUEST))
        query = parse_list_query(request.args, self.state.ticket_fields(), TICKET_INCLUDES)
        return json_response(_shape_ticket(self.state.get_ticket(ticket_id), query))

    def _lines(self, request: Request, ticket_id: int) -> Response:
        if request.method == "POST":
            line_id = self.state.add_line(
                ticket_id, read_json_object(request, ERROR_INVALID_REQUEST)
            )
            return self._created(f"/api/sales/tickets/{ticket_id}/lines/{line_id}")
        lines = self.state.ticket_lines(ticket_id)
        return self._list(request, lines, LINE_FIELD_SET, frozenset(), _shape_plain)

    def _line(self, request: Request, ticket_id: int, line_id: int) -> Response:
        return json_response(self.state.get_line(ticket_id, line_id))

    def _payments(self, request: Request, ticket_id: int) -> Response:
        if request.method == "POST":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            payment_id = self.state.add_payment(ticket_id, body)
            return self._created(f"/api/sales/tickets/{ticket_id}/payments/{payment_id}")
        payments = self.state.ticket_payments(ticket_id)
        return self._list(request, payments, PAYMENT_FIELD_SET, frozenset(), _shape_plain)

    def _payment(self, request: Request, ticket_id: int, payment_id: int) -> Response:
        return json_response(self.state.get_payment(ticket_id, payment_id))

    # Customers, locations, custom fields.

    def _customers(self, request: Request) -> Response:
        if request.method == "POST":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            customer_id = self.state.create_customer(body)
            return self._created(f"/api/customers/{customer_id}")
        return self._list(
            request,
            self.state.customer_snapshot(),
            self.state.customer_fields(),
            frozenset(),
            _shape_plain,
        )

    def _customer(self, request: Request, customer_id: int) -> Response:
        if request.method == "DELETE":
            self.state.delete_customer(customer_id)
            return Response(b"", status=204)
        if request.method == "PUT":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            self.state.update_customer(customer_id, body)
        return json_response(self.state.get_customer(customer_id))

    def _addresses(self, request: Request, customer_id: int) -> Response:
        if request.method == "POST":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            address_id = self.state.create_address(customer_id, body)
            return self._created(f"/api/customers/{customer_id}/addresses/{address_id}")
        addresses = self.state.customer_addresses(customer_id)
        return self._list(request, addresses, ADDRESS_FIELD_SET, frozenset(), _shape_plain)

    def _address(self, request: Request, customer_id: int, address_id: int) -> Response:
        if request.method == "PUT":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            self.state.update_address(customer_id, address_id, body)
        return json_response(self.state.get_address(customer_id, address_id))

    def _merge_customer(self, request: Request, customer_id: int) -> Response:
        """Merge customer `customer_id` into the one named by `{"into": id}`."""
        body = read_json_object(request, ERROR_INVALID_REQUEST)
        target = body.get("into")
        if isinstance(target, bool) or not isinstance(target, int):
            raise RequestError(422, ERROR_INVALID_REQUEST, 'send {"into": <customer id>}')
        moved = self.state.merge_customers(customer_id, target)
        return json_response({"merged_into": target, "tickets_moved": moved})

    def _locations(self, request: Request) -> Response:
        return self._list(
            request,
            self.state.location_snapshot(),
            LOCATION_FIELD_SET,
            frozenset({"stations"}),
            _shape_location,
        )

    def _location(self, request: Request, location_id: int) -> Response:
        query = parse_list_query(request.args, LOCATION_FIELD_SET, frozenset({"stations"}))
        return json_response(_shape_location(self.state.get_location(location_id), query))

    def _custom_fields(self, request: Request) -> Response:
        if request.method == "POST":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            field_id = self.state.create_custom_field(body)
            return self._created(f"/api/custom_fields/{field_id}")
        return self._list(
            request,
            self.state.custom_field_snapshot(),
            CUSTOM_FIELD_FIELD_SET,
            frozenset(),
            _shape_plain,
        )

    def _custom_field(self, request: Request, field_id: int) -> Response:
        return json_response(self.state.get_custom_field(field_id))

    # Coupons (see `yotposync.sandbox.coupons` for the assumed shape).

    def _coupons(self, request: Request) -> Response:
        if request.method == "POST":
            coupon_id = self.state.coupons.create(read_json_object(request, ERROR_INVALID_REQUEST))
            return self._created(f"/api/coupons/{coupon_id}")
        return self._list(
            request, self.state.coupons.snapshot(), COUPON_FIELD_SET, frozenset(), _shape_plain
        )

    def _coupon(self, request: Request, coupon_id: int) -> Response:
        if request.method == "PUT":
            body = read_json_object(request, ERROR_INVALID_REQUEST)
            self.state.coupons.update(coupon_id, body)
        return json_response(self.state.coupons.get(coupon_id))

    # Sandbox administration.

    def _release_late(self, request: Request) -> Response:
        released = self.state.release_late()
        log.info("released %d late tickets", released)
        return json_response({"released": released})

    def _health(self, request: Request) -> Response:
        return json_response(self.state.health())
