"""Schemathesis fuzzing of the REST API (portal.md §5) through a real daphne, from the live
`/openapi` document. Every operation gets Schemathesis' coverage phase (boundaries and one
violation of each constraint, unexpected methods and content types) and Hypothesis-generated
valid and schema-violating inputs, with generated path ids and with the ids of real rows of the
token's account (deletes run last). Every response must be no 5xx, a documented status code with
the documented content type and a body matching its schema; a protected operation must refuse a
missing or bad token, an undocumented method must be a 405 with `Allow`.

Deterministic (coverage cases, derandomized Hypothesis, no example database) and bounded:
`FUZZ_EXAMPLES` Hypothesis examples per operation, mode and id set (default 12; about 1.5 minutes
on 2 cores). Shrinking is off; a failure is reported with the request that caused it (as a curl
command), all failures of the run at once (up to 3 per operation).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    subject_for,
)
from gateways.services.sites import site_token_create
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)
from tests.api import API_HOST, api_token
from tests.live import LiveServer, run_daphne, server_env, wait_for_sessions_to_end

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # An operation that requires the bearer token refuses requests without (or with a bad) one.
    ignored_auth,
    # Methods a path does not document: 405 with the path's methods in `Allow`.
    unsupported_method,
    allow_header_conformance,
]
# The segment before a path parameter names the kind of row it is the id of.
KINDS = {
    "actor_groups": "group",
    "actors": "actor",
    "identities": "identity",
    "providers": "provider",
    "identity_providers": "provider",
    "clients": "client",
    "gateway_groups": "site",
    "gateways": "gateway",
    "tokens": "gateway_token",
    "policies": "policy",
    "resources": "resource",
}


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    """A server of its own: the rate limit (20 requests, then 1/s) would answer most of the
    fuzzer's requests with a 429."""
    with run_daphne(server_env(API_CAPACITY="1000000000", API_REFILL_RATE="1000000000")) as server:
        yield server
    with django_db_blocker.unblock():
        wait_for_sessions_to_end(server)


def _seed() -> tuple[str, dict[str, str]]:
    """An account with one row of each kind the API serves; returns an API client's token and
    the rows' ids by kind. The API client itself is not among them (deleting it would end the
    run's authentication)."""
    account = AccountFactory()
    site = SiteFactory(account=account)
    gateway = GatewayFactory(group=site, account=account)
    resource = ResourceFactory(account=account)
    ConnectionFactory(resource=resource, gateway_group=site, account=account)
    group = GroupFactory(account=account)
    actor = ActorFactory(account=account)
    MembershipFactory(group=group, actor=actor, account=account)
    provider = ProviderFactory(account=account)
    identity = IdentityFactory(actor=actor, account=account, provider=provider)
    policy = PolicyFactory(account=account, actor_group=group, resource=resource)
    client = ClientFactory(actor=actor, account=account)
    admin = ActorFactory(account=account, admin=True)
    admin_identity = IdentityFactory(actor=admin, account=account, provider=provider)
    subject = subject_for(admin, identity=admin_identity)
    gateway_token = site_token_create(subject=subject, site=site).token
    ids = {
        "site": site.pk,
        "gateway": gateway.pk,
        "resource": resource.pk,
        "group": group.pk,
        "actor": actor.pk,
        "provider": provider.pk,
        "identity": identity.pk,
        "policy": policy.pk,
        "client": client.pk,
        "gateway_token": gateway_token.pk,
    }
    return api_token(account=account), {kind: str(pk) for kind, pk in ids.items()}


def _real_ids(path: str, ids: dict[str, str]) -> dict[str, str]:
    """`{"actor_id": ..., "id": ...}` for a path template like `/actors/{actor_id}/...`."""
    segments = path.strip("/").split("/")
    return {
        segment[1:-1]: ids[KINDS[previous]]
        for previous, segment in pairwise(segments)
        if segment.startswith("{")
    }


# Deletes run last, dependents first, so each real row is deleted by its own operation (not
# cascaded away by its parent's delete before).
DELETE_ORDER = (
    "/actors/{actor_id}/identities/{id}",
    "/gateway_groups/{gateway_group_id}/gateways/{id}",
    "/gateway_groups/{gateway_group_id}/tokens/{id}",
    "/gateway_groups/{gateway_group_id}/tokens",
    "/policies/{id}",
    "/clients/{id}",
    "/resources/{id}",
    "/actor_groups/{id}",
    "/actors/{id}",
    "/gateway_groups/{id}",
    "/identity_providers/{id}",
)


def _order(operation: Any) -> tuple[int, str]:
    if operation.method.upper() != "DELETE":
        return -1, operation.label
    if operation.path in DELETE_ORDER:
        return DELETE_ORDER.index(operation.path), operation.label
    return len(DELETE_ORDER), operation.label


class Runner:
    """Sends cases to the server and keeps the failures (the first few of each operation) and
    the status codes seen."""

    def __init__(self, server: LiveServer, token: str, session: requests.Session) -> None:
        self.base_url = f"http://{server.host}"
        self.headers = {"Host": API_HOST, "Authorization": f"Bearer {token}"}
        self.session = session
        self.failures: dict[str, list[str]] = {}
        self.statuses: Counter[tuple[str, int]] = Counter()

    def send(self, case: Any) -> None:
        response = case.call_and_validate(
            base_url=self.base_url, headers=self.headers, session=self.session, checks=CHECKS
        )
        self.statuses[case.operation.label, response.status_code] += 1

    def fail(self, operation: Any, how: str, exc: BaseException) -> None:
        failures = self.failures.setdefault(operation.label, [])
        if len(failures) < 3:
            failures.append(f"{operation.label} ({how}):\n{exc}")

    def coverage(self, schema: Any, operation: Any, real_ids: dict[str, str]) -> None:
        """Schemathesis' coverage phase: the schema's boundaries and one violation of each
        constraint, deterministic. Real ids unless the case is about the path's parameters."""
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=list(GenerationMode),
            generation_config=schema.config.generation_for(operation=operation),
        )
        for case in cases:
            data = case.meta.phase.data
            if getattr(data, "parameter_location", None) != ParameterLocation.PATH:
                case.path_parameters.update(real_ids)
            try:
                self.send(case)
            except (Exception, BaseExceptionGroup) as exc:  # all are reported at the end
                self.fail(operation, f"coverage: {data.description}", exc)

    def fuzz(
        self, operation: Any, mode: GenerationMode, path_parameters: dict[str, str] | None
    ) -> None:
        """Hypothesis-generated cases of the operation; it stops at the first failure."""
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        def run(case: Any) -> None:
            self.send(case)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            ids = "real ids" if path_parameters else "generated ids"
            self.fail(operation, f"{mode.value}, {ids}", exc)


def test_the_api_conforms_to_its_openapi_document(fuzz_server: LiveServer) -> None:
    token, ids = _seed()
    status, _, body = fuzz_server.http("GET", "/openapi?format=json", {"Host": API_HOST})
    assert status == 200, body
    schema = schemathesis.openapi.from_dict(json.loads(body))
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # no unusable operation
    operations = sorted((result.ok() for result in results if isinstance(result, Ok)), key=_order)
    assert len(operations) > 40

    with requests.Session() as session:
        runner = Runner(fuzz_server, token, session)
        for operation in operations:
            real_ids = _real_ids(operation.path, ids)
            runner.coverage(schema, operation, real_ids)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                runner.fuzz(operation, mode, None)
                if real_ids:
                    runner.fuzz(operation, mode, real_ids)

    for (label, code), n in sorted(runner.statuses.items()):
        print(f"{label} {code}: {n}")  # shown when the test fails
    failures = [failure for found in runner.failures.values() for failure in found]
    if failures:
        pytest.fail(f"{len(failures)} failures:\n\n" + "\n\n".join(failures), pytrace=False)
    # The harness itself: the token works and the real rows were found.
    for operation in operations:
        if operation.method.upper() == "GET":
            assert runner.statuses[operation.label, 200], f"{operation.label}: never 200"
