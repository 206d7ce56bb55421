"""A stateful fake Stripe on a real local HTTP port (billing_sync_jobs.md §5.1), built from the
payloads in `../shared/spec/fixtures/external/stripe_*.json`.

The SDK is pointed at it through `STRIPE_API_BASE`; nothing of ours is patched. It answers the
calls of `billing/stripe.py`: customers (create, update, retrieve; 404 for unknown ids),
subscriptions (create, list with `starting_after`), products (the Starter/Team/Enterprise
fixtures by id), billing-portal sessions. Every request is recorded with its decoded form body
(`metadata[account_id]` → `{"metadata": {"account_id": …}}`), and failures can be scripted per
path: `fail("/v1/customers", 429, times=2)`, `down()` for an outage (500s).

Webhooks: `event(fixture, **changes)` loads an event fixture with its `id`/`created`/object
fields changed; `signature(body, secret, t)` computes a `Stripe-Signature` header.

Use the `stripe_fake` fixture (root conftest): it starts the server and turns billing on with a
test key, a signing secret and the default price.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# Copies of ../shared/spec/fixtures/external (the spec's payloads), kept with the tests.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "external"
SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_1111"
DEFAULT_PRICE_ID = "price_1OkUIcADeNU9NGxvTNA4PPq6"
# The customer every subscription fixture belongs to.
FIXTURE_CUSTOMER = "cus_NffrFeUfNV2Hib"
PRODUCTS = {"starter": "prod_PqStarter0000001", "team": "prod_Na6dGcTsmU0I4R"}
PRODUCTS["enterprise"] = "prod_PqEnterprise0001"


def fixture(name: str) -> Any:
    """A fixture file's JSON (`stripe_customer` or `stripe_customer.json`), a fresh copy."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return json.loads((FIXTURES / filename).read_text())


def signature(body: bytes | str, secret: str = WEBHOOK_SECRET, t: int | None = None) -> str:
    """A `Stripe-Signature` header value: `t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`."""
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


_ids = itertools.count(1)


def event(name: str, *, id: str | None = None, created: int | None = None, **obj: Any) -> dict:
    """An event fixture (`customer_subscription_updated` → stripe_event_…json) with a fresh
    `id` (unless given), `created` if given, and top-level fields of `data.object` replaced."""
    payload = fixture(f"stripe_event_{name}")
    payload["id"] = id or f"evt_test{next(_ids):010d}"
    if created is not None:
        payload["created"] = created
    payload["data"]["object"].update(obj)
    return payload


def decode_form(body: str) -> dict[str, Any]:
    """`a[b][0][c]=x` form encoding (Stripe's) into nested dicts; list indexes stay keys."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class Call:
    method: str
    path: str
    form: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Failure:
    prefix: str
    status: int
    times: int | None  # None = until cleared
    body: Any


@dataclass
class StripeFake:
    server: HTTPServer
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # Products added by tests (`add_product`), served before the Starter/Team/Enterprise ones.
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The product of subscriptions created through the API (the default price's plan).
    default_product: str = PRODUCTS["starter"]
    _failures: list[_Failure] = field(default_factory=list)
    # Stripe's idempotent requests: the first answer of each `Idempotency-Key`, replayed.
    _answers: dict[str, tuple[Any, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    # --- scripting ------------------------------------------------------------------------------

    def fail(self, prefix: str, status: int, *, times: int | None = 1, body: Any = None) -> None:
        """The next `times` requests whose path starts with `prefix` answer `status` (429 with
        the lock-timeout fixture by default)."""
        if body is None:
            api_error = {"error": {"type": "api_error"}}
            body = fixture("stripe_error_429") if status == 429 else api_error
        with self._lock:
            self._failures.append(_Failure(prefix, status, times, body))

    def down(self) -> None:
        """Every request answers 500 until `up()`."""
        self.fail("/", 500, times=None)

    def up(self) -> None:
        with self._lock:
            self._failures.clear()

    def add_customer(self, customer_id: str = FIXTURE_CUSTOMER, **fields: Any) -> dict[str, Any]:
        """A customer as `GET /v1/customers/{id}` returns it (the fixture, fields replaced);
        `account_id=` sets `metadata.account_id`."""
        customer = fixture("stripe_customer")
        customer["id"] = customer_id
        account_id = fields.pop("account_id", None)
        customer.update(fields)
        if account_id is not None:
            customer["metadata"] = {**customer.get("metadata", {}), "account_id": str(account_id)}
        elif "metadata" not in fields:
            customer["metadata"] = {}
        with self._lock:
            self.customers[customer_id] = customer
        return customer

    def add_subscription(self, *, customer: str, product: str, quantity: int = 1) -> dict:
        subscription = fixture("stripe_subscription_created_response")
        subscription["id"] = f"sub_fake{next(self._seq):08d}"
        subscription["customer"] = customer
        item = subscription["items"]["data"][0]
        item["price"]["product"] = product
        item["quantity"] = quantity
        with self._lock:
            self.subscriptions[subscription["id"]] = subscription
        return subscription

    def add_product(self, product_id: str, *, name: str, metadata: dict[str, Any]) -> dict:
        """A product `GET /v1/products/{id}` returns (the Team fixture, name and metadata
        replaced)."""
        product = fixture("stripe_product_team")
        product.update(id=product_id, name=name, metadata=metadata)
        with self._lock:
            self.products[product_id] = product
        return product

    def requests(self, method: str | None = None, path: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (path is None or c.path == path)
        ]

    # --- the HTTP side --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        form = decode_form(body if request.method == "POST" else request.query_string.decode())
        call = Call(request.method, request.path, form, dict(request.headers))
        with self._lock:
            self.calls.append(call)
            failure = self._take_failure(request.path)
        if failure is not None:
            return _json(failure.body, failure.status)
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        with self._lock:
            answered = self._answers.get(key) if key else None
        if answered is not None:
            return _json(*answered)
        try:
            response = self._route(call)
        except KeyError:
            return _json(fixture("stripe_error_404_customer"), 404)
        if key and response.status_code < 500:
            with self._lock:
                self._answers[key] = (response.get_json(), response.status_code)
        return response

    def _take_failure(self, path: str) -> _Failure | None:
        for failure in self._failures:
            if path.startswith(failure.prefix):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    def _route(self, call: Call) -> Response:
        method, path, form = call.method, call.path, call.form
        if (method, path) == ("POST", "/v1/customers"):
            customer = fixture("stripe_customer")
            customer.update(
                id=f"cus_fake{next(self._seq):08d}",
                name=form.get("name"),
                email=form.get("email"),
                metadata=form.get("metadata", {}),
            )
            with self._lock:
                self.customers[customer["id"]] = customer
            return _json(customer)
        if match := re.fullmatch(r"/v1/customers/([^/]+)", path):
            customer = self.customers[match[1]]
            if method == "POST":
                with self._lock:
                    if "name" in form:
                        customer["name"] = form["name"]
                    customer["metadata"] = {**customer["metadata"], **form.get("metadata", {})}
            return _json(customer)
        if (method, path) == ("POST", "/v1/subscriptions"):
            subscription = self.add_subscription(
                customer=form["customer"], product=self.default_product
            )
            return _json(subscription)
        if (method, path) == ("GET", "/v1/subscriptions"):
            return _json(self._subscriptions_page(form.get("starting_after")))
        if method == "GET" and (match := re.fullmatch(r"/v1/subscriptions/([^/]+)", path)):
            return _json(self.subscriptions[match[1]])
        if method == "GET" and (match := re.fullmatch(r"/v1/products/([^/]+)", path)):
            if match[1] in self.products:
                return _json(self.products[match[1]])
            names = {v: k for k, v in PRODUCTS.items()}
            return _json(fixture(f"stripe_product_{names[match[1]]}"))
        if (method, path) == ("POST", "/v1/billing_portal/sessions"):
            session = fixture("stripe_billing_portal_session")
            session.update(customer=form.get("customer"), return_url=form.get("return_url"))
            return _json(session)
        return _json({"error": {"type": "invalid_request_error", "message": "no route"}}, 404)

    def _subscriptions_page(self, starting_after: str | None, size: int = 10) -> dict:
        ids = sorted(self.subscriptions)
        start = ids.index(starting_after) + 1 if starting_after in ids else 0
        page = ids[start : start + size]
        return {
            "object": "list",
            "data": [copy.deepcopy(self.subscriptions[i]) for i in page],
            "has_more": start + size < len(ids),
            "url": "/v1/subscriptions",
        }


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def start() -> StripeFake:
    """A running fake (stop it with `fake.server.stop()`)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    fake = StripeFake(server=server)
    server.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    server.start()
    return fake
