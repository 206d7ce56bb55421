"""Admin pages: "Check access" of an actor and of a resource (issue 18 item 6).

The question comes as a GET query (linkable); ids are resolved through the account-scoped
selectors (another account's id → the 404 page) and the answer comes from
`resources.explain.access_explain_for`, the evaluator `create_flow` authorises with.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from accounts.auth import Subject
from accounts.models import Account, Actor
from accounts.selectors.actors import actor_get
from firezone.web.pages import account_url
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from gateways.models import Client
from gateways.selectors.clients import client_get
from resources.explain import Explanation, access_explain_for
from resources.explain_forms import (
    AccessCheckForm,
    access_form_for_actor,
    access_form_for_resource,
)
from resources.models import Resource
from resources.selectors.resources import resource_get_by_id_or_persistent_id


def _client(request: PortalRequest, form: AccessCheckForm, actor: Actor | None) -> Client | None:
    client_id = form.cleaned_data.get("client_id")
    if not client_id:
        return None
    client = client_get(request.subject, client_id=client_id)
    if actor is not None and client.actor_id != actor.pk:
        form.not_actors_client()
    return client


def _explain(
    subject: Subject, form: AccessCheckForm, actor: Actor, resource: Resource, client: Client | None
) -> Explanation | None:
    if form.errors:  # set after resolving the ids (a client of another actor)
        return None
    return access_explain_for(
        subject, actor=actor, resource=resource, client=client, **form.context_kwargs()
    )


def _page(request: PortalRequest, context: dict[str, Any]) -> HttpResponse:
    return render(request, "resources/access/page.html", context)


@admin_required
def actor_access(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = actor_get(subject, actor_id=id)
    form = access_form_for_actor(subject, actor=actor, data=request.GET)
    explanation = resource = None
    if form.is_bound and form.is_valid():
        resource = resource_get_by_id_or_persistent_id(subject, form.cleaned_data["resource_id"])
        client = _client(request, form, actor)
        explanation = _explain(request.subject, form, actor, resource, client)
    actor_link = account_url(account, "actor", id=actor.pk)
    return _page(
        request,
        {
            "page_title": f"Check access: {actor.name}",
            "breadcrumbs": [
                ("Actors", account_url(account, "actors")),
                (actor.name, actor_link),
                ("Check access", None),
            ],
            "access_form": form,
            "access_url": account_url(account, "actor_access", id=actor.pk),
            "actor": actor,
            "resource": resource,
            "explanation": explanation,
        },
    )


@admin_required
def resource_access(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    resource = resource_get_by_id_or_persistent_id(subject, id)
    form = access_form_for_resource(subject, data=request.GET)
    explanation = actor = None
    if form.is_bound and form.is_valid():
        actor_id = form.cleaned_data.get("actor_id")
        actor = actor_get(subject, actor_id=actor_id) if actor_id else None
        client = _client(request, form, actor)
        if actor is None and client is not None:
            actor = client.actor
        if actor is not None:
            explanation = _explain(request.subject, form, actor, resource, client)
    return _page(
        request,
        {
            "page_title": f"Check access: {resource.name}",
            "breadcrumbs": [
                ("Resources", account_url(account, "resources")),
                (resource.name, account_url(account, "resource", id=resource.pk)),
                ("Check access", None),
            ],
            "access_form": form,
            "access_url": account_url(account, "resource_access", id=resource.pk),
            "actor": actor,
            "resource": resource,
            "explanation": explanation,
        },
    )
