"""Admin pages: the "Add Actor" wizard (portal.md §4.5.2-§4.5.6): type → user details →
identity → group memberships; service account → token (shown once)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse

from accounts.forms.actors import (
    ActorTypeForm,
    IdentityForm,
    ServiceAccountForm,
    ServiceAccountTokenForm,
    UserForm,
)
from accounts.models import Account, Actor, AuthIdentity, AuthProvider
from accounts.selectors.actors import actor_get
from accounts.selectors.identities import identity_provider_options
from accounts.services.actors import actor_create
from accounts.services.identities import identity_create
from accounts.services.tokens_admin import service_account_token_create
from accounts.services.welcome_emails import identity_welcome_email_send
from accounts.views.actors.common import (
    actor_url,
    crumbs,
    grantable,
    new_token_page,
    user_actor,
)
from firezone.errors import NotFound
from firezone.web.edit import edit_page
from firezone.web.pages import account_url, action_of
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

logger = logging.getLogger(__name__)

# "Add Actor" step 1 choice -> the route of step 2.
NEW_ACTOR_ROUTES = {"users": "user_new", "service_accounts": "service_account_new"}

# --- new actor wizard ----------------------------------------------------------------------------


@admin_required
def actor_new(request: PortalRequest, account: Account) -> HttpResponse:
    # Choosing the type only moves on to that type's page.
    return edit_page(
        request,
        ActorTypeForm(request.POST if request.method == "POST" else None),
        template="accounts/actors/new.html",
        context={"page_title": "New Actor", "breadcrumbs": crumbs(account, ("Add", None))},
        save=lambda form: account_url(account, NEW_ACTOR_ROUTES[form.cleaned_data["next"]]),
    )


@admin_required
def user_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: UserForm) -> str:
        actor = actor_create(
            subject=request.subject, name=form.cleaned_data["name"], type=form.cleaned_data["type"]
        )
        return account_url(
            account, "user_new_identity", id=actor.pk, query={"next_step": "edit_groups"}
        )

    return edit_page(
        request,
        UserForm(request.POST or None, grantable=grantable(request)),
        template="accounts/actors/user_new.html",
        context={
            "page_title": "New User",
            "breadcrumbs": crumbs(
                account, ("Add", account_url(account, "actor_new")), ("User", None)
            ),
        },
        save=save,
    )


def _chosen_provider(providers: list[AuthProvider], request: HttpRequest) -> AuthProvider | None:
    wanted = request.POST.get("provider_id") or request.GET.get("provider_id")
    for provider in providers:
        if str(provider.pk) == wanted:
            return provider
    return providers[0] if providers else None


@admin_required
def user_new_identity(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = user_actor(request, id)
    wizard = request.GET.get("next_step") == "edit_groups"
    providers = list(identity_provider_options(subject, actor=actor))
    provider = _chosen_provider(providers, request)
    # A POST only choosing another provider (no JavaScript) re-renders that provider's form.
    submitted = request.method == "POST" and action_of(request) != "select_provider"
    form = IdentityForm(
        request.POST if submitted else None,
        providers=providers,
        provider=provider,
        initial={"provider_id": str(provider.pk) if provider else None},
    )

    def save(form: IdentityForm) -> str:
        assert provider is not None  # submitted only with a provider
        identity = identity_create(
            subject=subject, actor=actor, provider=provider, **form.service_fields()
        )
        if provider.adapter == AuthProvider.Adapter.EMAIL:
            _send_welcome_quietly(request, identity)
        return account_url(account, "actor_edit_groups" if wizard else "actor", id=actor.pk)

    return edit_page(
        request,
        form,
        template="accounts/actors/identity_new.html",
        context={
            "page_title": "New User Identity",
            "breadcrumbs": crumbs(
                account, (actor.name, actor_url(account, actor)), ("Add Identity", None)
            ),
            "actor": actor,
            "providers": providers,
            "provider": provider,
            "wizard": wizard,
        },
        save=save,
        submitted=submitted and provider is not None,
    )


def _send_welcome_quietly(request: PortalRequest, identity: AuthIdentity) -> None:
    """The automatic invitation after adding an email identity: the identity stays even if
    the email cannot be delivered (the admin can resend it from the actor page)."""
    try:
        identity_welcome_email_send(subject=request.subject, identity=identity)
    except Exception:
        logger.exception("welcome email for identity %s failed", identity.pk)


@admin_required
def service_account_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: ServiceAccountForm) -> str:
        actor = actor_create(
            subject=request.subject,
            name=form.cleaned_data["name"],
            type=Actor.Type.SERVICE_ACCOUNT,
        )
        return account_url(account, "service_account_new_identity", id=actor.pk)

    return edit_page(
        request,
        ServiceAccountForm(request.POST or None),
        template="accounts/actors/service_account_new.html",
        context={
            "page_title": "New Service Account",
            "breadcrumbs": crumbs(
                account, ("Add", account_url(account, "actor_new")), ("Service Account", None)
            ),
        },
        save=save,
    )


@admin_required
def service_account_new_identity(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    actor = actor_get(request.subject, actor_id=id)
    if not actor.is_service_account:
        raise NotFound()
    return new_token_page(
        request,
        actor,
        ServiceAccountTokenForm(request.POST or None),
        create=service_account_token_create,
        template="accounts/actors/service_account_token.html",
        context={
            "page_title": "New Service Account Token",
            "breadcrumbs": crumbs(
                account, (actor.name, actor_url(account, actor)), ("Create Token", None)
            ),
        },
    )
