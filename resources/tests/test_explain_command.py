"""`manage.py explain_access` (staff): lookups by id, email and name; the printed text."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.factories import IdentityFactory, ProviderFactory
from resources.tests.factories import World

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("explain_access", *args, stdout=out)
    return out.getvalue()


def test_prints_a_denial_by_ids() -> None:
    world = World()
    world.policy.conditions = [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["DE"]}
    ]
    world.policy.save()
    text = _run(str(world.actor.pk), str(world.resource.pk), "--at", "2025-10-08T12:00:00")
    assert f"{world.actor.name} → {world.resource.name}: DENIED" in text
    assert "reason: connecting from US, the policy requires one of DE" in text
    assert "FAIL remote_ip_location_region is_in DE [US]" in text
    assert "at 2025-10-08 12:00:00 UTC" in text
    assert f"- {world.site.name}: 0 online, 0 compatible" in text
    # The overrides reach the explainer: from Germany the policy holds (no gateway online).
    text = _run(str(world.actor.pk), str(world.resource.pk), "--location", "de")
    assert "reason: no gateway of site" in text and "ok   remote_ip_location_region" in text


def test_by_email_and_resource_name_and_errors() -> None:
    world = World()
    provider = ProviderFactory(account=world.account)
    IdentityFactory(
        account=world.account,
        actor=world.actor,
        provider=provider,
        email="ada@example.com",
        provider_identifier="ada@example.com",
    )
    text = _run("ADA@example.com", world.resource.name, "--account", world.account.slug)
    assert f"{world.actor.name} → {world.resource.name}" in text
    assert "grants" in text
    with pytest.raises(CommandError, match="no such actor"):
        _run("nobody@example.com", world.resource.name)
    with pytest.raises(CommandError, match="no such actor"):
        _run(str(world.actor.pk), World().resource.name)  # another account's resource
    with pytest.raises(CommandError, match="ISO 8601"):
        _run(str(world.actor.pk), str(world.resource.pk), "--at", "soon")


def test_ambiguous_names_ask_for_an_id() -> None:
    first, second = World(), World()
    second.actor.name = first.actor.name
    second.actor.save()
    with pytest.raises(CommandError, match="several actors match"):
        _run(first.actor.name, first.resource.name)
    text = _run(first.actor.name, first.resource.name, "--account", str(first.account.pk))
    assert first.resource.name in text
