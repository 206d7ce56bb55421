"""Admin pages: policies (portal.md §4.4): the list, the new/edit form with its conditions
editor, and the policy page with its events (disable, enable, delete)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.features import feature_enabled
from accounts.models import Account, ActorGroup, AuthProvider
from accounts.selectors.providers import provider_list
from firezone.web import audit
from firezone.web.edit import edit_page
from firezone.web.events import page_events
from firezone.web.pages import account_url
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable
from resources import policy_forms
from resources.models import Policy, Resource
from resources.policy_forms import PolicyForm, describe_conditions
from resources.selectors.policies import (
    Options,
    policy_flows,
    policy_get_by_id_or_persistent_id,
    policy_group_option,
    policy_group_options,
    policy_list,
    policy_resource_option,
    policy_resource_options,
    policy_site_get,
)
from resources.services.policies import (
    policy_create,
    policy_delete,
    policy_disable,
    policy_enable,
    policy_update,
)
from resources.services.resources import UNSET
from resources.tables import flows_table

MSG_CREATED = "Policy created successfully."
FORM_TEMPLATE = "resources/policies/form.html"
GROUP_SEARCH = "search_query-policy_actor_group_id"
RESOURCE_SEARCH = "search_query-policy_resource_id"
CONDITIONS_FEATURE = "policy_conditions"


# --- list ----------------------------------------------------------------------------------------


def _search(queryset: QuerySet[Policy], value: str) -> QuerySet[Policy]:
    return queryset.filter(
        Q(actor_group__name__icontains=value) | Q(resource__name__icontains=value)
    )


POLICIES_TABLE = LiveTable(
    id="policies",
    columns=[Column("id"), Column("group"), Column("resource"), Column("status")],
    row_template="resources/policies/_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "asc"),
    filters=[
        Filter("group_or_resource_name", _search, title="Group Name or Resource Name"),
        STATUS_FILTER,
    ],
    empty_template="resources/policies/_empty.html",
    live_topics=["changes:policies"],
    live_mode="stale",
)

FLOWS_TABLE = flows_table(
    columns=["authorized", "client, actor", "gateway"],
    row_template="resources/policies/_flow_row.html",
)


@admin_required
def policies_list(request: PortalRequest, account: Account) -> HttpResponse:
    page = POLICIES_TABLE.page(request, policy_list(request.subject))
    return render(
        request,
        "resources/policies/list.html",
        {"page_title": "Policies", "breadcrumbs": [("Policies", None)], "page": page},
    )


# --- new / edit ----------------------------------------------------------------------------------


def _group_optgroups(options: Options, selected: ActorGroup | None) -> list[tuple[str, list]]:
    """Option groups in picker order; the chosen group is always offered."""
    items = list(options.items)
    if selected is not None and all(g.pk != selected.pk for g in items):
        items.insert(0, selected)
    groups: dict[str, list[ActorGroup]] = {}
    for group in items:
        if group.type == ActorGroup.Type.MANAGED:
            label = "Managed by Firezone"
        elif group.provider_id is None:
            label = "Manually managed"
        else:
            label = f"Synced from {group.provider.name}"
        groups.setdefault(label, []).append(group)
    return list(groups.items())


RESOURCE_GROUP_LABELS = {"internet": "", "dns": "DNS", "ip": "IP", "cidr": "CIDR"}


def _resource_label(resource: Resource, internet_enabled: bool) -> str:
    if resource.type == Resource.Type.INTERNET:
        return "Internet" if internet_enabled else "Internet - upgrade to unlock"
    sites = [c.gateway_group.name for c in resource.connections.all()]
    where = f"({', '.join(sites)})" if sites else "(not connected to any Site)"
    return f"{resource.name} {where}"


def _resource_optgroups(
    options: Options, selected: Resource | None, internet_enabled: bool
) -> list[tuple[str, list[dict[str, Any]]]]:
    items = list(options.items)
    if selected is not None and all(r.pk != selected.pk for r in items):
        items.insert(0, selected)
    groups: dict[str, list[dict[str, Any]]] = {}
    for resource in sorted(items, key=lambda r: list(RESOURCE_GROUP_LABELS).index(r.type)):
        groups.setdefault(RESOURCE_GROUP_LABELS.get(resource.type, resource.type), []).append(
            {
                "id": str(resource.pk),
                "type": resource.type,
                "label": _resource_label(resource, internet_enabled),
                "connected": resource.type == Resource.Type.INTERNET
                or bool(resource.connections.all()),
                "disabled": resource.type == Resource.Type.INTERNET and not internet_enabled,
            }
        )
    return list(groups.items())


def _chosen_group(request: PortalRequest, group_id: str) -> ActorGroup | None:
    return policy_group_option(request.subject, group_id) if group_id else None


def _chosen_resource(request: PortalRequest, resource_id: str) -> Resource | None:
    return policy_resource_option(request.subject, resource_id) if resource_id else None


def _form_page(
    request: PortalRequest,
    account: Account,
    form: PolicyForm,
    save: Callable[[PolicyForm], str],
    *,
    policy: Policy | None,
    locked_group: bool = False,
    locked_resource: bool = False,
) -> HttpResponse:
    """The new policy page, or the edit page of `policy`."""
    crumbs = (
        [(_policy_name(policy), account_url(account, "policy", id=policy.pk))] if policy else []
    )
    labels: dict[str, Any] = {
        "page_title": f"Edit Policy {policy.pk}" if policy else "New Policy",
        "breadcrumbs": [
            ("Policies", account_url(account, "policies")),
            *crumbs,
            ("Edit" if policy else "Add Policy", None),
        ],
        "heading": "Edit Policy" if policy else "Add Policy",
        "submit": "Save" if policy else "Create Policy",
        "busy": "Updating Policy..." if policy else "Creating Policy...",
        "is_new": policy is None,
        **({"policy": policy} if policy else {}),
    }
    return edit_page(
        request,
        form,
        template=FORM_TEMPLATE,
        context=lambda form: _form_context(
            request,
            account,
            form,
            template_context=labels,
            locked_group=locked_group,
            locked_resource=locked_resource,
        ),
        save=save,
    )


def _form_context(
    request: PortalRequest,
    account: Account,
    form: PolicyForm,
    *,
    template_context: dict[str, Any],
    locked_group: bool = False,
    locked_resource: bool = False,
) -> dict[str, Any]:
    """The policy form page around the form: the pickers' options follow what was chosen."""
    subject = request.subject
    group = _chosen_group(request, form.actor_group_id)
    resource = _chosen_resource(request, form.resource_id)
    internet_enabled = feature_enabled(account, "internet_resource")
    group_search = request.GET.get(GROUP_SEARCH, "")
    resource_search = request.GET.get(RESOURCE_SEARCH, "")
    group_options = policy_group_options(subject, search=group_search)
    resource_options = policy_resource_options(subject, search=resource_search)
    return {
        **template_context,
        "group": group,
        "resource": resource,
        "locked_group": locked_group,
        "locked_resource": locked_resource,
        "group_optgroups": _group_optgroups(group_options, group),
        "group_options": group_options,
        "group_search": group_search,
        "resource_optgroups": _resource_optgroups(resource_options, resource, internet_enabled),
        "resource_label": _resource_label(resource, internet_enabled) if resource else "",
        "resource_options": resource_options,
        "resource_search": resource_search,
        "conditions_enabled": feature_enabled(account, CONDITIONS_FEATURE),
        "time_offered": policy_forms.time_condition_offered(resource.type if resource else None),
        "countries": policy_forms.country_options(),
        "timezones": policy_forms.timezone_options(),
        "providers": list(provider_list(subject)),
    }


def _conditions(account: Account, form: PolicyForm, resource: Resource | None) -> Any:
    """The submitted conditions, or None when the plan lacks them (they are stripped)."""
    if not feature_enabled(account, CONDITIONS_FEATURE):
        return None
    return form.conditions(resource_type=resource.type if resource else None)


@admin_required
def policy_new(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    # `?resource_id=` / `?actor_group_id=` lock the pickers; `?site_id=` only sends us back there.
    locked_resource = _chosen_resource(request, request.GET.get("resource_id", ""))
    locked_group = _chosen_group(request, request.GET.get("actor_group_id", ""))
    site_id = request.GET.get("site_id", "")
    site = policy_site_get(subject, site_id) if site_id else None

    if request.method == "POST":
        form = PolicyForm.from_post(request.POST)
        if locked_resource is not None:
            form.resource_id = str(locked_resource.pk)
        if locked_group is not None:
            form.actor_group_id = str(locked_group.pk)
    else:
        form = PolicyForm(
            actor_group_id=str(locked_group.pk) if locked_group else "",
            resource_id=str(locked_resource.pk) if locked_resource else "",
        )

    def save(form: PolicyForm) -> str:
        resource = _chosen_resource(request, form.resource_id)
        policy_create(
            subject=subject,
            actor_group_id=form.actor_group_id,
            resource_id=form.resource_id,
            description=form.description,
            conditions=_conditions(account, form, resource),
        )
        if site is not None:
            return account_url(account, "site", id=site.pk, fragment="resources")
        if locked_resource is not None:
            return account_url(account, "resource", id=locked_resource.pk)
        if locked_group is not None:
            return account_url(account, "group", id=locked_group.pk)
        messages.info(request, MSG_CREATED)
        return account_url(account, "policies")

    return _form_page(
        request,
        account,
        form,
        save,
        policy=None,
        locked_group=locked_group is not None,
        locked_resource=locked_resource is not None,
    )


def _policy_name(policy: Policy) -> str:
    return f"{policy.actor_group.name} → {policy.resource.name}"


@admin_required
def policy_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    policy = policy_get_by_id_or_persistent_id(subject, id)
    here = account_url(account, "policy", id=policy.pk)

    def save(form: PolicyForm) -> str:
        resource = _chosen_resource(request, form.resource_id)
        conditions = _conditions(account, form, resource)
        policy_update(
            subject=subject,
            policy=policy,
            description=form.description,
            actor_group_id=form.actor_group_id,
            resource_id=form.resource_id,
            # Without the plan feature the stored conditions are kept as they are.
            conditions=UNSET if conditions is None else conditions,
        )
        return here

    form = (
        PolicyForm.from_post(request.POST)
        if request.method == "POST"
        else PolicyForm.from_policy(policy)
    )
    return _form_page(request, account, form, save, policy=policy)


# --- detail --------------------------------------------------------------------------------------


def provider_url(account: Account, provider: AuthProvider) -> str:
    """The provider's page, inside the account (§9 item 13: the original's links were not)."""
    if provider.adapter in AuthProvider.SINGLETON_ADAPTERS:
        return account_url(account, "system_provider", id=provider.pk)
    return account_url(account, "identity_provider", adapter=provider.adapter, id=provider.pk)


def _sentence(request: PortalRequest, account: Account, policy: Policy) -> Any:
    if not policy.conditions:
        return None
    wants_providers = any(
        isinstance(c, dict) and c.get("property") == "provider_id" for c in policy.conditions
    )
    providers = {str(p.pk): p for p in provider_list(request.subject)} if wants_providers else {}
    return describe_conditions(
        policy.conditions,
        providers=providers,
        provider_url=lambda provider: provider_url(account, provider),
    )


def _detail_event(request: PortalRequest, account: Account, policy: Policy) -> HttpResponse:
    subject = request.subject

    def disable() -> None:
        policy_disable(subject=subject, policy=policy)

    def enable() -> None:
        policy_enable(subject=subject, policy=policy)

    def delete() -> HttpResponse:
        policy_delete(subject=subject, policy=policy)
        return HttpResponseRedirect(account_url(account, "policies"))

    return page_events(
        request,
        here=account_url(account, "policy", id=policy.pk),
        handlers={"disable": disable, "enable": enable, "delete": delete},
    )


@admin_required
def policy_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    policy = policy_get_by_id_or_persistent_id(subject, id)
    if request.method == "POST":
        return _detail_event(request, account, policy)

    flows = FLOWS_TABLE.page(request, policy_flows(subject, policy))
    name = _policy_name(policy)
    return render(
        request,
        "resources/policies/detail.html",
        {
            "page_title": f"Policy {policy.pk}",
            "breadcrumbs": [("Policies", account_url(account, "policies")), (name, None)],
            "policy": policy,
            "name": name,
            "sentence": _sentence(request, account, policy),
            "flows": flows,
            "history": audit.history(account, "policies", policy.pk),
        },
    )
