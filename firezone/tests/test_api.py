"""The REST API's framework (portal.md §5.1): host routing, documents, bearer authentication,
error bodies, pagination parameters and the per-account rate limit. The endpoints' own tests are
in each app (`resources/tests/test_api_resources.py`, ...)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone
from openapi_spec_validator import validate

from accounts.models import Actor, Token
from accounts.tests.factories import AccountFactory, ActorFactory
from firezone.api import ratelimit
from firezone.api.exceptions import nested_errors
from firezone.api.middleware import is_api_request
from firezone.api.pagination import clamp_limit
from firezone.web.tables import keyset_page
from resources.tests.factories import ResourceFactory
from tests.api import API_HOST, ApiClient, api_token, error

pytestmark = pytest.mark.django_db

UNAUTHORIZED = error("Unauthorized")


# --- routing and documents ----------------------------------------------------------------------


def test_health_on_the_api_origin() -> None:
    response = ApiClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_paths_are_the_api_404() -> None:
    response = ApiClient(api_token()).get("/nothing/here")
    assert response.status_code == 404
    assert response.json() == error("Not Found")


def test_the_portal_origin_does_not_serve_the_api() -> None:
    response = Client(HTTP_HOST="localhost:8000").get("/account")
    assert "application/json" not in response.headers.get("Content-Type", "")


@pytest.mark.parametrize(
    ("api_url", "host", "routed"),
    [
        ("http://localhost:13001", "localhost:13001", True),
        ("http://localhost:13001", "localhost:8000", False),
        ("http://localhost:13001", "localhost", False),
        # Behind a TLS-terminating proxy: no port in Host means the API scheme's default one.
        ("https://api.example.com", "api.example.com", True),
        ("wss://api.example.com", "API.example.com:443", True),
        ("https://api.example.com", "portal.example.com", False),
        # The API origin is the portal's own (production default): the portal keeps its URLs.
        ("ws://localhost:8000", "localhost:8000", False),
    ],
)
def test_requests_are_routed_by_the_api_origin(
    settings, api_url: str, host: str, routed: bool
) -> None:
    settings.API_EXTERNAL_URL = api_url
    settings.EXTERNAL_URL = "http://localhost:8000"
    settings.ALLOWED_HOSTS = ["localhost", "api.example.com", "portal.example.com"]
    request = RequestFactory().get("/resources", HTTP_HOST=host)
    assert is_api_request(request) is routed


def test_openapi_document() -> None:
    response = ApiClient().get("/openapi", format="json")
    assert response.status_code == 200
    document = response.json()
    assert {
        "/account",
        "/resources",
        "/resources/{id}",
        "/clients/{id}/verify",
        "/gateway_groups/{gateway_group_id}/tokens/{id}",
        "/gateway_groups/{gateway_group_id}/gateways/{id}",
    } <= set(document["paths"])
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API client token.",
    }
    assert document["paths"]["/resources"]["get"]["security"] == [{"bearerAuth": []}]
    validate(document)  # openapi-spec-validator: the OpenAPI 3.0 specification's own rules


def test_every_operation_documents_the_errors_it_can_answer() -> None:
    # tests/test_api_fuzz.py checks the answers against the document; this is the fast part.
    document = ApiClient().get("/openapi", format="json").json()
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            expected = {"401", "429"}
            if "{" in route:
                expected.add("404")
            # Not lists: the account, and one actor's access explanation.
            single = route == "/account" or route.endswith("/access")
            if method == "get" and "{" not in route.rsplit("/", 1)[-1] and not single:
                expected.add("400")  # a list: "Invalid cursor"
            if "requestBody" in operation:
                expected |= {"400", "422"}
            missing = expected - documented
            assert not missing, f"{method.upper()} {route} does not document {sorted(missing)}"


def test_openapi_document_is_valid_without_warnings(tmp_path) -> None:
    # drf-spectacular's own check (OpenAPI 3 JSON schema); a warning means a wrong document.
    out = tmp_path / "openapi.yaml"
    call_command(
        "spectacular",
        "--urlconf",
        "firezone.api_urls",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
    )
    assert "bearerAuth" in out.read_text()


def test_swagger_ui_comes_from_our_static_files() -> None:
    response = ApiClient().get("/swaggerui")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert ApiClient().get("/swaggerui", script="").status_code == 200  # the split init script


# --- authentication ---------------------------------------------------------------------------


def test_an_api_client_token_authenticates_and_its_use_is_recorded() -> None:
    token = api_token()
    response = ApiClient(token).get("/account")
    assert response.status_code == 200
    row = Token.objects.get(type="api_client")
    assert row.last_seen_at is not None
    assert row.last_seen_remote_ip == "127.0.0.1"


def test_no_token_is_401() -> None:
    response = ApiClient().get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer nonsense", "Basic abc"])
def test_malformed_authorization_is_401(header: str) -> None:
    response = Client(HTTP_HOST=API_HOST, headers={"authorization": header}).get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_token_of_another_type_is_401() -> None:
    actor = ActorFactory(service_account=True)
    response = ApiClient(api_token(actor, type="client")).get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_an_expired_token_is_401() -> None:
    token = api_token()
    Token.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = ApiClient(token).get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_revoked_token_is_401() -> None:
    token = api_token()
    Token.objects.all().delete()
    response = ApiClient(token).get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_disabled_actor_is_401() -> None:
    token = api_token()
    Actor.objects.update(disabled_at=timezone.now())
    response = ApiClient(token).get("/account")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_an_actor_without_the_permission_is_401_with_the_domain_reason() -> None:
    # An api_client token of a service account (only an admin mistake could make one): the
    # domain refuses `account:manage_own`, and the reason says so (§5.1).
    actor = ActorFactory(service_account=True)
    response = ApiClient(api_token(actor)).get("/account")
    assert response.status_code == 401
    assert response.json() == error("missing_permissions")


# --- request bodies and errors --------------------------------------------------------------


def test_a_body_without_its_wrapper_is_400() -> None:
    response = ApiClient(api_token()).post("/resources", {"name": "x"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


def test_malformed_json_is_400() -> None:
    response = ApiClient(api_token()).post("/resources", '{"resource": ')
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


def test_an_unreadable_cursor_is_400() -> None:
    response = ApiClient(api_token()).get("/resources", page_cursor="not-a-cursor")
    assert response.status_code == 400
    assert response.json() == error("Invalid cursor")


def test_a_method_the_route_lacks_is_405() -> None:
    response = ApiClient(api_token()).send("put", "/account", {"account": {}})
    assert response.status_code == 405
    assert response.json() == error("Method Not Allowed")


def test_domain_field_errors_nest_like_the_original() -> None:
    errors = {"name": ["can't be blank"], "__all__": ["taken"], "filters.0.ports": ["bad"]}
    assert nested_errors(errors) == {
        "name": ["can't be blank"],
        "base": ["taken"],
        "filters": {"0": {"ports": ["bad"]}},
    }


def test_a_cursor_of_another_list_is_a_value_error_not_a_500() -> None:
    # A name-ordered list's cursor used on a time-ordered one: the value is no datetime.
    rows = ResourceFactory._meta.model.objects.all()
    cursor = ("after", "some name", str(uuid.uuid4()))
    with pytest.raises(ValueError):
        keyset_page(rows, "inserted_at", ascending=True, cursor=cursor, size=10)


@pytest.mark.parametrize(
    ("raw", "limit"), [(None, 50), ("10", 10), ("0", 1), ("-5", 1), ("500", 100), ("x", 50)]
)
def test_limit_is_clamped(raw: str | None, limit: int) -> None:
    assert clamp_limit(raw) == limit


# --- rate limit -----------------------------------------------------------------------------


def test_the_bucket_allows_a_burst_of_20_then_refills() -> None:
    # Straight at the Lua script, with the default settings: 20 times 10 of 200 tokens.
    account_id = AccountFactory().pk
    assert all(ratelimit.spend(account_id) for _ in range(20))
    assert ratelimit.spend(account_id) is False
    assert ratelimit.spend(AccountFactory().pk) is True  # buckets are per account


def test_the_21st_burst_request_is_429(settings) -> None:
    # Almost no refill: on a slow machine 20 requests may take over a second (10 tokens).
    settings.API_REFILL_RATE = 0.001
    account = AccountFactory()
    client = ApiClient(api_token(account=account))
    statuses = [client.get("/account").status_code for _ in range(20)]
    assert statuses == [200] * 20
    response = client.get("/account")
    assert response.status_code == 429
    assert response.json() == error("Too Many Requests")
    assert response.headers["Retry-After"] == "1"
    # Another account has its own bucket.
    assert ApiClient(api_token()).get("/account").status_code == 200


def test_unauthenticated_requests_spend_nothing(settings) -> None:
    settings.API_REFILL_RATE = 0.001
    account = AccountFactory()
    for _ in range(25):
        assert ApiClient("bad").get("/account").status_code == 401
    assert ApiClient(api_token(account=account)).get("/account").status_code == 200
