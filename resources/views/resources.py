"""Admin pages: resources (portal.md §4.3).

List (live table marked stale by resource changes), New / Edit (one form, resources/forms.py,
validated by the resource services) and the detail page with its policies and recent
connections tables and the delete event.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.features import feature_enabled
from accounts.models import Account
from firezone.errors import NotFound, Refused, ValidationFailed
from firezone.web.pages import action_of, redirect_error, redirect_info, url
from firezone.web.session import admin_required, not_found
from firezone.web.tables import Column, Filter, LiveTable
from gateways.models import Site
from gateways.selectors.sites import site_get, site_list
from resources.forms import (
    ADDRESS_PLACEHOLDERS,
    IP_STACK_CHOICES,
    NO_TYPE_PLACEHOLDER,
    TYPE_CHOICES,
    ResourceForm,
)
from resources.models import Resource
from resources.selectors.flows import flow_list_for
from resources.selectors.policies import policy_list
from resources.selectors.resources import (
    internet_resource_get,
    resource_get_by_id_or_persistent_id,
    resource_list,
    resource_peek_actor_groups,
    resource_search,
    resource_sites,
    with_sites,
)
from resources.services.resources import (
    MSG_BLANK,
    resource_create,
    resource_delete,
    resource_field_errors,
    resource_update,
)
from resources.tables import resource_policies_table

DELETED = "Resource was deleted."

RESOURCES_TABLE = LiveTable(
    id="resources",
    columns=[
        Column("Name", order="name"),
        Column("Address", order="address"),
        Column("sites"),
        Column("Authorized groups"),
    ],
    row_template="resources/resources/_row.html",
    orders={"name": "name", "address": "address"},
    default_order=("name", "asc"),
    filters=[Filter("name", resource_search, title="Name or Address")],
    empty_template="resources/resources/_empty.html",
    live_topics=["changes:resources"],
    live_mode="stale",
)


POLICIES_TABLE = resource_policies_table(
    row_template="resources/resources/_policy_row.html",
    empty_template="resources/resources/_policies_empty.html",
    # §9 item 10: the detail page follows changes of what it shows.
    live_topics=["changes:policies"],
)

FLOWS_TABLE = LiveTable(
    id="flows",
    columns=[Column("authorized"), Column("policy"), Column("client, actor"), Column("gateway")],
    row_template="resources/resources/_flow_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "desc"),
    empty_message="No activity to display.",
    live_topics=["changes:flows"],
)


# --- helpers --------------------------------------------------------------------------------


def _bound_site(request: HttpRequest) -> Site | None:
    """The `?site_id=` the page is opened for (404 when it names no site of the account)."""
    site_id = request.GET.get("site_id")
    if not site_id:
        return None
    return site_get(request.subject, site_id=site_id)  # type: ignore[attr-defined]


def _with_site(path: str, site: Site | None, **params: Any) -> str:
    query = {**params, **({"site_id": str(site.pk)} if site else {})}
    return path + (f"?{urlencode(query)}" if query else "")


def _get_resource(request: HttpRequest, id: str) -> Resource:
    subject = request.subject  # type: ignore[attr-defined]
    if id == "internet":
        return internet_resource_get(subject)
    return resource_get_by_id_or_persistent_id(subject, id)


def _form_context(
    account: Account, form: ResourceForm, site: Site | None, **extra: Any
) -> dict[str, Any]:
    return {
        "form": form,
        "site": site,
        "sites": form.sites,
        "type_choices": TYPE_CHOICES,
        "ip_stack_choices": IP_STACK_CHOICES,
        "placeholders": ADDRESS_PLACEHOLDERS,
        "no_type_placeholder": NO_TYPE_PLACEHOLDER,
        "multi_site": feature_enabled(account, "multi_site_resources"),
        "traffic_filters": feature_enabled(account, "traffic_filters"),
        "dns_settings_url": url(account, "/settings/dns"),
        **extra,
    }


def _validate_only(
    request: HttpRequest, form: ResourceForm, account: Account, site: Site | None
) -> bool:
    """Validate-as-you-type (§4: forms validate on every change): an htmx POST fired by one
    input (`HX-Trigger-Name`) only puts the errors the save would report on the form (the page
    swaps in that input's); nothing is written."""
    trigger = request.htmx.trigger_name if request.htmx else None  # type: ignore[attr-defined]
    if request.method != "POST" or not trigger:
        return False
    if form.is_valid():
        kwargs = form.service_kwargs(
            traffic_filters=feature_enabled(account, "traffic_filters"), connections=None
        )
        errors = resource_field_errors(account=account, **kwargs)
        if site is None and not _connections(form, account, site):
            errors["connections"] = [MSG_BLANK]
        form.add_service_errors(errors)
    if trigger == "resource[type]" and not form.data.get("resource[address]"):
        form.errors.pop("address", None)  # a new type re-checks the address only once typed
    return True


def _page_errors(errors: dict[str, list[str]], site: Site | None) -> dict[str, list[str]]:
    """A page bound to a site has no Sites input: its site errors go on top of the form."""
    if site is None or "connections" not in errors:
        return errors
    errors = dict(errors)
    errors["base"] = errors.pop("connections")
    return errors


def _connections(form: ResourceForm, account: Account, site: Site | None) -> list[str]:
    """The sites to connect: the page's site, else the checked ones (only the first without
    `multi_site_resources`, whose page offers a single select)."""
    if site is not None:
        return [str(site.pk)]
    chosen = [v for v in form.cleaned_data.get("connections") or [] if v]
    return chosen if feature_enabled(account, "multi_site_resources") else chosen[:1]


# --- pages ----------------------------------------------------------------------------------


@admin_required
def resources_list(request: HttpRequest, account: Account) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    resources = with_sites(resource_list(subject, exclude_internet=True))
    page = RESOURCES_TABLE.page(request, resources)
    # One query for the "Authorized groups" peeks of the whole page.
    peeks = resource_peek_actor_groups(subject, page.rows)
    for row in page.rows:
        peek = peeks.get(row.pk)
        row.groups_peek = peek
        row.groups_more = peek.count - len(peek.items) if peek else 0
    return render(
        request,
        "resources/resources/index.html",
        {
            "page_title": "Resources",
            "breadcrumbs": [("Resources", None)],
            "page": page,
            "internet_enabled": feature_enabled(account, "internet_resource"),
        },
    )


@admin_required
def resource_new(request: HttpRequest, account: Account) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    site = _bound_site(request)
    sites = [] if site else list(site_list(subject))
    form = ResourceForm(request.POST if request.method == "POST" else None, sites=sites)
    if not _validate_only(request, form, account, site) and form.is_valid():
        kwargs = form.service_kwargs(
            traffic_filters=feature_enabled(account, "traffic_filters"),
            connections=_connections(form, account, site),
        )
        try:
            resource = resource_create(subject=subject, **kwargs)
        except ValidationFailed as exc:
            form.add_service_errors(_page_errors(exc.errors, site))
        else:
            target = _with_site(url(account, "/policies/new"), site, resource_id=str(resource.pk))
            return redirect_info(request, target, f"Resource {resource.name} created successfully.")
    return render(
        request,
        "resources/resources/new.html",
        _form_context(
            account,
            form,
            site,
            page_title="New Resource",
            breadcrumbs=[("Resources", url(account, "/resources")), ("Add Resource", None)],
        ),
    )


@admin_required
def resource_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    resource = _get_resource(request, id)
    site = _bound_site(request)
    if action_of(request) == "delete":
        try:
            resource_delete(subject=subject, resource=resource)
        except Refused as exc:
            return redirect_error(request, request.get_full_path(), exc.message)
        target = url(account, f"/sites/{site.pk}") if site else url(account, "/resources")
        return redirect_info(request, target, DELETED)
    if request.method == "POST":
        return not_found(request)

    add_policy_url = _with_site(url(account, "/policies/new"), site, resource_id=str(resource.pk))
    policies_table = dataclasses.replace(POLICIES_TABLE, context={"add_policy_url": add_policy_url})
    policies = policies_table.page(request, policy_list(subject, resource_id=resource.pk))
    flows = FLOWS_TABLE.page(
        request,
        flow_list_for(subject, resource=resource).select_related(
            "policy__actor_group", "client__actor", "gateway__group"
        ),
    )
    base = url(account, f"/resources/{resource.pk}")
    return render(
        request,
        "resources/resources/show.html",
        {
            "page_title": f"Resource {resource.name}",
            "breadcrumbs": [("Resources", url(account, "/resources")), (resource.name, None)],
            "resource": resource,
            "site": site,
            "sites": resource_sites(subject, resource),
            "description_is_url": _is_url(resource.address_description),
            "policies_page": policies,
            "flows_page": flows,
            "edit_url": _with_site(f"{base}/edit", site),
            "add_policy_url": add_policy_url,
        },
    )


@admin_required
def resource_edit(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    resource = _get_resource(request, id)
    if resource.is_internet:
        raise NotFound()
    site = _bound_site(request)
    sites = [] if site else list(site_list(subject))
    if request.method == "POST":
        form = ResourceForm(request.POST, sites=sites)
    else:
        form = ResourceForm(initial=ResourceForm.initial_for(resource), sites=sites)
    if not _validate_only(request, form, account, site) and form.is_valid():
        kwargs = form.service_kwargs(
            traffic_filters=feature_enabled(account, "traffic_filters"),
            connections=None if site else _connections(form, account, site),
        )
        try:
            resource = resource_update(subject=subject, resource=resource, **kwargs)
        except ValidationFailed as exc:
            form.add_service_errors(_page_errors(exc.errors, site))
        else:
            target = url(account, f"/sites/{site.pk}") if site else url(account, "/resources")
            return redirect_info(request, target, f"Resource {resource.name} updated successfully.")
    return render(
        request,
        "resources/resources/edit.html",
        _form_context(
            account,
            form,
            site,
            page_title=f"Edit {resource.name}",
            breadcrumbs=[
                ("Resources", url(account, "/resources")),
                (resource.name, _with_site(url(account, f"/resources/{resource.pk}"), site)),
                ("Edit", None),
            ],
            resource=resource,
        ),
    )


def _is_url(text: str | None) -> bool:
    return bool(text) and str(text).lower().startswith(("http://", "https://"))
