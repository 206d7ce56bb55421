"""Admin pages: resources (portal.md §4.3).

List (live table marked stale by resource changes), New / Edit (one form, resources/forms.py,
validated by the resource services) and the detail page with its policies and recent
connections tables and the delete event.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render

from accounts.features import feature_enabled
from accounts.models import Account
from firezone.errors import NotFound, ValidationFailed
from firezone.web import audit
from firezone.web.edit import edit_page
from firezone.web.events import page_events
from firezone.web.pages import account_url, redirect_info
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from gateways.models import Site
from gateways.selectors.sites import site_get, site_list
from resources.explain_forms import access_form_for_resource
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
from resources.tables import (
    flows_table,
    peek_groups,
    resource_policies_table,
    resources_table,
)

DELETED = "Resource was deleted."

RESOURCES_TABLE = resources_table(
    row_template="resources/resources/_row.html",
    sites=True,
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

FLOWS_TABLE = flows_table(
    columns=["authorized", "policy", "client, actor", "gateway"],
    row_template="resources/resources/_flow_row.html",
    live_topics=["changes:flows"],
)


# --- helpers --------------------------------------------------------------------------------


def _bound_site(request: PortalRequest) -> Site | None:
    """The `?site_id=` the page is opened for (404 when it names no site of the account)."""
    site_id = request.GET.get("site_id")
    if not site_id:
        return None
    return site_get(request.subject, site_id=site_id)


def _with_site(
    name: str, account: Account, site: Site | None, *, id: Any = None, **params: Any
) -> str:
    """The route `name`, keeping the page's `?site_id=` (and other query `params`)."""
    query = {**params, **({"site_id": str(site.pk)} if site else {})}
    kwargs = {"id": id} if id is not None else {}
    return account_url(account, name, query=query, **kwargs)


def _site_or_resources(account: Account, site: Site | None) -> str:
    """Back to the site the page was opened from, else the resources list."""
    return account_url(account, "site", id=site.pk) if site else account_url(account, "resources")


def _get_resource(request: PortalRequest, id: str) -> Resource:
    subject = request.subject
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
        "dns_settings_url": account_url(account, "settings_dns"),
        **extra,
    }


def _submitted(
    request: PortalRequest, form: ResourceForm, account: Account, site: Site | None
) -> bool:
    """Whether the POST saves. Validate-as-you-type (§4: forms validate on every change): an htmx
    POST fired by one input (`HX-Trigger-Name`) only puts the errors the save would report on the
    form (the page swaps in that input's); nothing is written."""
    if request.method != "POST":
        return False
    trigger = request.htmx.trigger_name if request.htmx else None
    if not trigger:
        return True
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
    return False


def _page_errors(exc: ValidationFailed, site: Site | None) -> ValidationFailed:
    """A page bound to a site has no Sites input: its site errors go on top of the form."""
    if site is None or "connections" not in exc.errors:
        return exc
    errors = dict(exc.errors)
    errors["base"] = errors.pop("connections")
    return ValidationFailed(errors)


def _connections(form: ResourceForm, account: Account, site: Site | None) -> list[str]:
    """The sites to connect: the page's site, else the checked ones (only the first without
    `multi_site_resources`, whose page offers a single select)."""
    if site is not None:
        return [str(site.pk)]
    chosen = [v for v in form.cleaned_data.get("connections") or [] if v]
    return chosen if feature_enabled(account, "multi_site_resources") else chosen[:1]


# --- pages ----------------------------------------------------------------------------------


@admin_required
def resources_list(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    resources = with_sites(resource_list(subject, exclude_internet=True))
    page = RESOURCES_TABLE.page(request, resources)
    peek_groups(subject, page.rows)
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
def resource_new(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    site = _bound_site(request)
    sites = [] if site else list(site_list(subject))
    form = ResourceForm(request.POST if request.method == "POST" else None, sites=sites)

    def save(form: ResourceForm) -> str:
        kwargs = form.service_kwargs(
            traffic_filters=feature_enabled(account, "traffic_filters"),
            connections=_connections(form, account, site),
        )
        try:
            resource = resource_create(subject=subject, **kwargs)
        except ValidationFailed as exc:
            raise _page_errors(exc, site) from None
        messages.info(request, f"Resource {resource.name} created successfully.")
        return _with_site("policy_new", account, site, resource_id=str(resource.pk))

    return edit_page(
        request,
        form,
        template="resources/resources/new.html",
        context=_form_context(
            account,
            form,
            site,
            page_title="New Resource",
            breadcrumbs=[
                ("Resources", account_url(account, "resources")),
                ("Add Resource", None),
            ],
        ),
        save=save,
        submitted=_submitted(request, form, account, site),
    )


def _resource_event(
    request: PortalRequest, account: Account, resource: Resource, site: Site | None
) -> HttpResponse:
    def delete() -> HttpResponse:
        resource_delete(subject=request.subject, resource=resource)
        return redirect_info(request, _site_or_resources(account, site), DELETED)

    # A refused deletion goes back to the page as it was opened (with its `?site_id=`).
    here = request.get_full_path()
    return page_events(request, here=here, handlers={"delete": delete}, strict=True)


@admin_required
def resource_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    resource = _get_resource(request, id)
    site = _bound_site(request)
    if request.method == "POST":
        return _resource_event(request, account, resource, site)

    add_policy_url = _with_site("policy_new", account, site, resource_id=str(resource.pk))
    policies_table = dataclasses.replace(POLICIES_TABLE, context={"add_policy_url": add_policy_url})
    policies = policies_table.page(request, policy_list(subject, resource_id=resource.pk))
    flows = FLOWS_TABLE.page(
        request,
        flow_list_for(subject, resource=resource).select_related(
            "policy__actor_group", "client__actor", "gateway__group"
        ),
    )
    return render(
        request,
        "resources/resources/show.html",
        {
            "page_title": f"Resource {resource.name}",
            "breadcrumbs": [
                ("Resources", account_url(account, "resources")),
                (resource.name, None),
            ],
            "resource": resource,
            "site": site,
            "sites": resource_sites(subject, resource),
            "description_is_url": _is_url(resource.address_description),
            "policies_page": policies,
            "flows_page": flows,
            "edit_url": _with_site("resource_edit", account, site, id=resource.pk),
            "add_policy_url": add_policy_url,
            "history": audit.history(account, "resources", resource.pk),
            # "Check access" (issue 18 item 6) asks the resource's access page.
            "access_form": access_form_for_resource(subject, data=None),
            "access_url": account_url(account, "resource_access", id=resource.pk),
        },
    )


@admin_required
def resource_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    resource = _get_resource(request, id)
    if resource.is_internet:
        raise NotFound()
    site = _bound_site(request)
    sites = [] if site else list(site_list(subject))
    if request.method == "POST":
        form = ResourceForm(request.POST, sites=sites)
    else:
        form = ResourceForm(initial=ResourceForm.initial_for(resource), sites=sites)

    def save(form: ResourceForm) -> str:
        kwargs = form.service_kwargs(
            traffic_filters=feature_enabled(account, "traffic_filters"),
            connections=None if site else _connections(form, account, site),
        )
        try:
            updated = resource_update(subject=subject, resource=resource, **kwargs)
        except ValidationFailed as exc:
            raise _page_errors(exc, site) from None
        messages.info(request, f"Resource {updated.name} updated successfully.")
        return _site_or_resources(account, site)

    return edit_page(
        request,
        form,
        template="resources/resources/edit.html",
        context=_form_context(
            account,
            form,
            site,
            page_title=f"Edit {resource.name}",
            breadcrumbs=[
                ("Resources", account_url(account, "resources")),
                (resource.name, _with_site("resource", account, site, id=resource.pk)),
                ("Edit", None),
            ],
            resource=resource,
        ),
        save=save,
        submitted=_submitted(request, form, account, site),
    )


def _is_url(text: str | None) -> bool:
    return bool(text) and str(text).lower().startswith(("http://", "https://"))
