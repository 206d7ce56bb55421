"""Prometheus metrics for operators, served at `/metrics` (prometheus-client).

Every metric lives in `registry`, this module's own `CollectorRegistry` (not the library's
global default), together with the process (RSS, CPU, open fds), platform and GC collectors.

**Per process.** Metrics are process-local: each daphne server process exports its own sockets,
joins, hubs and pushes; run one scrape target per process and aggregate in Prometheus (`sum by`).
There is no multiprocess mode. Celery workers are separate processes, so their task counters do
not appear on daphne's `/metrics`: set `CELERY_METRICS_PORT` to have each worker process serve
its own registry on `127.0.0.1:<port>` (prefork children on `<port> + <child index>`), see
`_start_worker_metrics_server`. Tasks run eagerly (`CELERY_TASK_ALWAYS_EAGER`) are counted in the
process that ran them.

Access: on by default (`METRICS_ENABLED`), answered only to `REMOTE_ADDR`s inside
`METRICS_ALLOWED_NETWORKS` (loopback by default); anything else gets the portal's ordinary 404.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

logger = logging.getLogger(__name__)

# No `<name>_created` series next to every counter/histogram child: they double the output and
# nobody alerts on them (process-wide switch of prometheus-client; nothing else here uses it).
disable_created_metrics()

registry = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=registry)
PlatformCollector(registry=registry)
GCCollector(registry=registry)

# --- device sockets ------------------------------------------------------------------------------

SOCKETS = Gauge(
    "firezone_sockets",
    "Open device sockets (client, gateway, relay).",
    ["kind"],
    registry=registry,
)
JOINS = Counter(
    "firezone_socket_joins_total",
    "Successful channel joins of device sockets.",
    ["kind"],
    registry=registry,
)
REJECTIONS = Counter(
    "firezone_socket_rejections_total",
    "Refused device connects (status = HTTP status: 401, 403, 422, 500) or joins (status=join).",
    ["kind", "status"],
    registry=registry,
)
CREATE_FLOW_SECONDS = Histogram(
    "firezone_create_flow_seconds",
    "From a client's create_flow to authorize_flow (or flow_creation_failed) being sent.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=registry,
)
PUSHES = Counter(
    "firezone_pushes_total",
    "Frames pushed to devices.",
    ["kind", "event"],
    registry=registry,
)

# --- access hubs ---------------------------------------------------------------------------------

CHANGE_APPLY_SECONDS = Histogram(
    "firezone_hub_change_apply_seconds",
    "Time for an access hub to apply one batch of changes and push to its sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=registry,
)
HUB_RELOADS = Counter(
    "firezone_hub_reloads_total",
    "Full reloads of an access hub "
    "(reason: start, gap, duplicate, reconnect, oversized, error, compact, missed).",
    ["reason"],
    registry=registry,
)
HUBS = Gauge(
    "firezone_hubs",
    "Account hubs currently loaded in this process.",
    registry=registry,
)

# --- Celery --------------------------------------------------------------------------------------

CELERY_TASKS = Counter(
    "firezone_celery_tasks_total",
    "Celery task outcomes (success, failure, retry) in this process.",
    ["task", "outcome"],
    registry=registry,
)

_push_children: dict[tuple[str, str], Any] = {}


def push_counter(kind: str, event: str) -> Counter:
    """The `PUSHES` child for (kind, event), cached: `labels()` takes a lock and a dict lookup,
    so hot paths call this once and keep the child."""
    child = _push_children.get((kind, event))
    if child is None:
        # labels() returns the same child for the same values, so a race here is harmless.
        child = _push_children[(kind, event)] = PUSHES.labels(kind=kind, event=event)
    return child


# --- the /metrics view ---------------------------------------------------------------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def address_allowed(remote_addr: str | None) -> bool:
    """Whether `remote_addr` lies in METRICS_ALLOWED_NETWORKS (an IPv4-mapped IPv6 address
    counts as its IPv4 address). Unparseable or missing addresses are refused."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    networks = _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    return any(candidate in network for candidate in candidates for network in networks)


# csrf_exempt: read-only; without it a POST would get the CSRF 403 instead of 404/405.
@csrf_exempt
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    # Access first, method second: a refused caller must not learn the endpoint exists (405).
    # The caller is REMOTE_ADDR, the TCP peer. X-Forwarded-For is deliberately NOT consulted:
    # any client can send it, so trusting it would let anyone claim to be 127.0.0.1.
    if not settings.METRICS_ENABLED or not address_allowed(request.META.get("REMOTE_ADDR")):
        raise Http404("not found")  # the portal's ordinary 404 page, as for any unknown path
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# --- Celery signals ------------------------------------------------------------------------------


def _task_name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or "unknown")


def _on_task_success(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="success").inc()


def _on_task_failure(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="failure").inc()


def _on_task_retry(sender: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="retry").inc()


def _serve_worker_metrics(port: int) -> None:
    try:
        start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        logger.warning("worker metrics: cannot listen on 127.0.0.1:%s: %s", port, exc)
    else:
        logger.info("worker metrics on http://127.0.0.1:%s/metrics", port)


def _start_worker_metrics_server(sender: Any = None, **_: Any) -> None:
    """`worker_ready` (the worker's main process): solo/threads/gevent pools run tasks here."""
    from celery.concurrency.prefork import TaskPool as PreforkPool

    port = int(getattr(settings, "CELERY_METRICS_PORT", 0) or 0)
    if port and not isinstance(getattr(sender, "pool", None), PreforkPool):
        _serve_worker_metrics(port)


def _start_worker_child_metrics_server(**_: Any) -> None:
    """`worker_process_init` (a prefork child, where tasks run): port + the child's index."""
    from billiard.process import current_process

    port = int(getattr(settings, "CELERY_METRICS_PORT", 0) or 0)
    if port:
        _serve_worker_metrics(port + int(getattr(current_process(), "index", 0) or 0))


def connect_celery_signals() -> None:
    """Count task outcomes and (with CELERY_METRICS_PORT) serve a worker's metrics.
    Called from firezone/celery.py; idempotent (dispatch_uid)."""
    from celery import signals

    signals.task_success.connect(_on_task_success, weak=False, dispatch_uid="fz-metrics-ok")
    signals.task_failure.connect(_on_task_failure, weak=False, dispatch_uid="fz-metrics-fail")
    signals.task_retry.connect(_on_task_retry, weak=False, dispatch_uid="fz-metrics-retry")
    signals.worker_ready.connect(
        _start_worker_metrics_server, weak=False, dispatch_uid="fz-metrics-worker"
    )
    signals.worker_process_init.connect(
        _start_worker_child_metrics_server, weak=False, dispatch_uid="fz-metrics-child"
    )
