"""The Yotpo Loyalty emulator as a WSGI application, serving `/api/v2/...` and `/_sandbox/...`.

Credentials go in the `x-guid` and `x-api-key` headers or the `guid` and `api_key` query
parameters. Every response carries the `ratelimit-*` headers. The sandbox paths need the
same credentials but do not count toward the rate limit.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from yotposync.sandbox.httpkit import RequestError, json_response, read_json_object
from yotposync.sandbox.redemptions import RedemptionDesk
from yotposync.sandbox.yotpo_state import RateLimiter, YotpoState

log = logging.getLogger(__name__)

_URLS = Map(
    [
        Rule("/api/v2/orders", endpoint="orders", methods=["POST"]),
        Rule("/api/v2/refunds", endpoint="refunds", methods=["POST"]),
        Rule("/api/v2/customers", endpoint="customers", methods=["GET", "POST"]),
        Rule("/api/v2/points/adjust", endpoint="adjust", methods=["POST"]),
        Rule("/api/v2/vip_tiers", endpoint="vip_tiers"),
        Rule("/api/v2/redemption_options", endpoint="redemption_options"),
        Rule("/api/v2/redemptions", endpoint="redemptions", methods=["POST"]),
        Rule("/_sandbox/redemption_options", endpoint="set_redemption_options", methods=["PUT"]),
        Rule("/_sandbox/locks", endpoint="locks", methods=["POST"]),
        Rule("/_sandbox/webhook", endpoint="webhook", methods=["PUT"]),
        Rule("/_sandbox/records", endpoint="records"),
        Rule("/_sandbox/health", endpoint="health"),
    ]
)


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class YotpoApp:
    """WSGI application over one `YotpoState`."""

    def __init__(
        self,
        state: YotpoState,
        limiter: RateLimiter,
        guid: str,
        api_key: str,
        desk: RedemptionDesk | None = None,
    ) -> None:
        self.state = state
        self.desk = desk or RedemptionDesk(state, state.clock)
        self.limiter = limiter
        self._guid = guid
        self._api_key = api_key

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if not self._authorized(request):
            response = _error(401, "missing or invalid guid and api key")
            response.headers.update(self.limiter.peek())
            return response
        if request.path.startswith("/_sandbox/"):
            response = self._route(request)
            response.headers.update(self.limiter.peek())
            return response
        decision = self.limiter.take()
        if not decision.allowed:
            response = _error(429, "rate limit exceeded; retry after ratelimit-reset seconds")
        else:
            response = self._route(request)
        response.headers.update(decision.headers)
        return response

    def _authorized(self, request: Request) -> bool:
        guid = request.headers.get("x-guid") or request.args.get("guid") or ""
        api_key = request.headers.get("x-api-key") or request.args.get("api_key") or ""
        guid_ok = hmac.compare_digest(guid.encode(), self._guid.encode())
        key_ok = hmac.compare_digest(api_key.encode(), self._api_key.encode())
        return guid_ok and key_ok

    def _route(self, request: Request) -> Response:
        adapter = _URLS.bind_to_environ(request.environ)
        try:
            endpoint, _ = adapter.match()
            handler = getattr(self, f"_{endpoint}")
            response: Response = handler(request)
            return response
        except RequestError as error:
            return _error(error.status, error.message)
        except MethodNotAllowed:
            return _error(405, f"method {request.method} is not allowed on {request.path}")
        except NotFound:
            return _error(404, f"no resource at {request.path}")
        except HTTPException as exc:
            return _error(exc.code or 500, exc.description or "request failed")
        except Exception:
            log.exception("yotpo emulator failed on %s %s", request.method, request.path)
            return _error(500, "the sandbox failed on this request; see its log")

    def _orders(self, request: Request) -> Response:
        self.state.create_order(read_json_object(request, "invalid_request"))
        return json_response({})

    def _refunds(self, request: Request) -> Response:
        self.state.create_refund(read_json_object(request, "invalid_request"))
        return json_response({})

    def _customers(self, request: Request) -> Response:
        if request.method == "POST":
            self.state.upsert_customer(read_json_object(request, "invalid_request"))
            return json_response({})
        with_history = request.args.get("with_history", "false").lower() == "true"
        return json_response(self.state.find_customer(request.args, with_history))

    def _adjust(self, request: Request) -> Response:
        body = read_json_object(request, "invalid_request")
        self.desk.check_lock(body)
        self.state.adjust_points(body)
        return json_response({})

    def _vip_tiers(self, request: Request) -> Response:
        return json_response(self.state.vip_tiers())

    def _redemption_options(self, request: Request) -> Response:
        return json_response(self.state.redemption_options(request.args))

    def _records(self, request: Request) -> Response:
        return json_response(self.state.records() | {"redemptions": self.desk.records()})

    # Redemptions and their administration (see `sandbox.redemptions`).

    def _redemptions(self, request: Request) -> Response:
        return json_response(self.desk.create_redemption(read_json_object(request, "invalid")))

    def _set_redemption_options(self, request: Request) -> Response:
        options = read_json_object(request, "invalid_request").get("options")
        if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
            raise RequestError(400, "invalid_request", 'send {"options": [option, ...]}')
        self.state.set_redemption_options(options)
        return json_response({"options": len(options)})

    def _locks(self, request: Request) -> Response:
        body = read_json_object(request, "invalid_request")
        email = body.get("customer_email")
        if not isinstance(email, str) or "@" not in email:
            raise RequestError(400, "invalid_request", "customer_email is required")
        self.desk.set_lock(email, body.get("locked") is not False)
        return json_response({})

    def _webhook(self, request: Request) -> Response:
        body = read_json_object(request, "invalid_request")
        url = body.get("url")
        secret = body.get("secret")
        if url is not None and (not isinstance(url, str) or not isinstance(secret, str)):
            raise RequestError(400, "invalid_request", "send url and secret as text, or url null")
        self.desk.set_webhook(url, secret or "")
        return json_response({})

    def _health(self, request: Request) -> Response:
        return json_response({"status": "ok"})
