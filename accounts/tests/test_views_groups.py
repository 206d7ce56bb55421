"""Group pages (portal.md §4.6): list, new group, group page and its delete event, edit name and
edit members, with the Django test client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Actor, ActorGroup, ActorGroupMembership
from accounts.services.groups import group_members_change
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    everyone_group,
    subject_for,
    synced_group,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from firezone.errors import Refused
from resources.models import Policy, Resource

pytestmark = pytest.mark.django_db

MANAGED = "This group is managed by Firezone and cannot be edited."
SYNCED = "This group is synced from an external source and cannot be edited."


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _user(acme: Acme, name: str, *, admin: bool = False) -> Actor:
    actor = ActorFactory(account=acme.account, name=name, admin=admin)
    IdentityFactory(
        actor=actor,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier=f"{name.lower()}@acme.test",
    )
    return actor


def _policy(group: ActorGroup, resource_name: str = "Wiki", **kwargs: Any) -> Policy:
    resource = Resource.objects.create(
        account=group.account,
        type="dns",
        address=f"{resource_name.lower()}.example.com",
        name=resource_name,
        ip_stack="dual",
        created_by="system",
    )
    return Policy.objects.create(
        account=group.account, actor_group=group, resource=resource, created_by="system", **kwargs
    )


def _members(group: ActorGroup) -> set[uuid.UUID]:
    return set(ActorGroupMembership.objects.filter(group=group).values_list("actor_id", flat=True))


# --- access --------------------------------------------------------------------------------------


def _urls(group: ActorGroup) -> list[str]:
    return [
        "/acme/groups",
        "/acme/groups/new",
        f"/acme/groups/{group.pk}",
        f"/acme/groups/{group.pk}/edit",
        f"/acme/groups/{group.pk}/edit_actors",
    ]


def test_regular_user_gets_404_everywhere(acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    user = _user(acme, "Joe")
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, user.identities.get())
    for path in _urls(group):
        response = c.get(path)
        assert response.status_code == 404, path
        assert "Sorry, we couldn't find this page." in _text(response)
    assert c.post(f"/acme/groups/{group.pk}", {"action": "delete"}).status_code == 404
    assert ActorGroup.objects.filter(pk=group.pk).exists()


def test_signed_out_is_sent_to_sign_in(acme: Acme) -> None:
    response = Client(HTTP_USER_AGENT=UA).get("/acme/groups")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_accounts_group_is_404(client: Client, acme: Acme) -> None:
    other = AccountFactory()
    foreign = GroupFactory(account=other, name="Foreign")
    for path in _urls(foreign)[2:]:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"action": "delete", "name": "x"}).status_code == 404, path
    assert ActorGroup.objects.filter(pk=foreign.pk, name="Foreign").exists()


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(client: Client, bad: str) -> None:
    for suffix in ("", "/edit", "/edit_actors"):
        assert client.get(f"/acme/groups/{bad}{suffix}").status_code == 404


def test_foreign_actor_cannot_be_added(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    stranger = ActorFactory(account=AccountFactory())
    path = f"/acme/groups/{group.pk}/edit_actors"
    response = client.post(path, {"action": "save", "add": str(stranger.pk), "remove": ""})
    assert response.status_code == 302
    assert _members(group) == set()


# --- list ----------------------------------------------------------------------------------------


def test_list_renders_rows(client: Client, acme: Acme) -> None:
    everyone = everyone_group(acme.account)
    eng = GroupFactory(account=acme.account, name="Eng")
    names = ["Amy", "Bob", "Cid", "Dan"]
    for name in names:
        MembershipFactory(group=eng, actor=_user(acme, name))
    synced = synced_group(acme.account, name="Okta Sales")

    response = client.get("/acme/groups")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Groups · Firezone</title>" in text
    assert "Groups organize Actors and form the basis of the Firezone access control model." in text
    assert 'href="/acme/groups/new"' in text and "Add Group" in text
    assert "https://www.firezone.dev/kb/deploy/groups?utm_source=product" in text
    for group in (everyone, eng, synced):
        assert f'id="groups-{group.pk}"' in text
        assert f'href="/acme/groups/{group.pk}">{group.name}</a>' in text
    # Peek of 3 actors, then a link to the rest.
    assert ">Amy</a>, " in text and ">Cid</a>" in text and ">Dan</a>" not in text
    assert f'href="/acme/groups/{eng.pk}#actors">and 1 more.</a>' in text
    assert "None" in text  # the synced group has no actors
    assert "Manually managed in Firezone" in text
    assert synced.provider is not None
    assert f"Synced from {synced.provider.name}" in text
    assert "Search by Name" in text and "For any Provider" in text
    assert "Created" in text


def test_list_empty(client: Client) -> None:
    text = _text(client.get("/acme/groups"))
    assert "No groups to display." in text
    assert 'href="/acme/groups/new">Add a group manually</a>' in text
    assert 'href="/acme/settings/identity_providers">go to settings</a>' in text


def test_list_filters(client: Client, acme: Acme) -> None:
    eng = GroupFactory(account=acme.account, name="Engineering")
    ops = GroupFactory(account=acme.account, name="Ops")
    synced = synced_group(acme.account, name="Synced")
    # Email and username & password providers are not offered.
    text = _text(client.get("/acme/groups"))
    assert f'<option value="{synced.provider_id}">' in text
    assert f'<option value="{acme.email_provider.pk}">' not in text

    text = _text(client.get("/acme/groups", {"groups_filter[name]": "engin"}))
    assert f"groups-{eng.pk}" in text and f"groups-{ops.pk}" not in text
    deep = {"groups_filter[provider_id]": str(synced.provider_id)}
    text = _text(client.get("/acme/groups", deep))
    assert f"groups-{synced.pk}" in text and f"groups-{eng.pk}" not in text
    text = _text(client.get("/acme/groups", {"groups_filter[name]": "zzz"}))
    assert "There are no results matching your filters." in text


def test_list_bad_filter_resets(client: Client) -> None:
    response = client.get("/acme/groups", {"groups_filter[provider_id]": str(uuid.uuid4())})
    assert response.status_code == 302 and response["Location"] == "/acme/groups"
    follow = client.get(response["Location"])
    assert "The page was reset due to invalid value of a pagination filter." in _text(follow)


def test_list_sorts(client: Client, acme: Acme) -> None:
    GroupFactory(account=acme.account, name="Zed")
    GroupFactory(account=acme.account, name="Amy")
    text = _text(client.get("/acme/groups"))
    assert text.index(">Amy<") < text.index(">Zed<")
    text = _text(client.get("/acme/groups", {"groups_order_by": "groups:desc:name"}))
    assert text.index(">Zed<") < text.index(">Amy<")
    text = _text(client.get("/acme/groups", {"groups_order_by": "groups:desc:created"}))
    assert text.index(">Amy<") < text.index(">Zed<")


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _populate(acme: Acme, n: int, start: int = 0) -> None:
    actors = [_user(acme, f"U{start}-{i}") for i in range(4)]
    for i in range(start, start + n):
        group = GroupFactory(account=acme.account, name=f"G{i:03d}")
        for actor in actors:
            MembershipFactory(group=group, actor=actor)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    _populate(acme, 1)
    client.get("/acme/groups")  # warm the session
    few = _count_queries(client, "/acme/groups")
    _populate(acme, 50, start=1)
    many = _count_queries(client, "/acme/groups")
    assert few == many


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    MembershipFactory(group=group, actor=_user(acme, "First"))
    _policy(group, "R0")
    path = f"/acme/groups/{group.pk}"
    client.get(path)
    few = _count_queries(client, path)
    for i in range(1, 15):
        MembershipFactory(group=group, actor=_user(acme, f"U{i}"))
        _policy(group, f"R{i}")
    many = _count_queries(client, path)
    assert few == many


def test_edit_actors_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    path = f"/acme/groups/{group.pk}/edit_actors"
    client.get(path)
    few = _count_queries(client, path)
    for i in range(15):
        MembershipFactory(group=group, actor=_user(acme, f"U{i}"))
    many = _count_queries(client, path)
    assert few == many


# --- new -----------------------------------------------------------------------------------------


def test_new_group_page(client: Client) -> None:
    text = _text(client.get("/acme/groups/new"))
    assert "<title>New Group · Firezone</title>" in text
    assert 'href="/acme/groups">Groups</a>' in text and "<li>Add</li>" in text
    assert "Group Name" in text and 'placeholder="E.g. Engineering"' in text
    assert "Next: Select Members" in text


def test_new_group_creates_and_goes_to_members(client: Client, acme: Acme) -> None:
    response = client.post("/acme/groups/new", {"name": "  Eng  ", "type": "static"})
    group = ActorGroup.objects.get(account=acme.account, name="Eng")
    assert group.type == ActorGroup.Type.STATIC and group.provider_id is None
    assert response.status_code == 302
    assert response["Location"] == f"/acme/groups/{group.pk}/edit_actors"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "can&#x27;t be blank"),
        ("   ", "can&#x27;t be blank"),
        ("x" * 256, "should be at most 255 character(s)"),
        ("Taken", "has already been taken"),
    ],
)
def test_new_group_errors(client: Client, acme: Acme, name: str, error: str) -> None:
    GroupFactory(account=acme.account, name="Taken")
    response = client.post("/acme/groups/new", {"name": name})
    assert response.status_code == 200
    assert error in _text(response)
    assert ActorGroup.objects.filter(account=acme.account).count() == 1


# --- detail --------------------------------------------------------------------------------------


def test_static_group_page(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng", created_by="identity")
    group.created_by_subject = {"name": "Admin", "email": "admin@acme.test"}
    group.save()
    jane = _user(acme, "Jane", admin=True)
    sa = ActorFactory(account=acme.account, name="Backend", service_account=True)
    MembershipFactory(group=group, actor=jane)
    MembershipFactory(group=group, actor=sa)
    policy = _policy(group, "Wiki")
    off = _policy(group, "Grafana", disabled_at="2024-01-01T00:00:00Z")

    response = client.get(f"/acme/groups/{group.pk}")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Group Eng · Firezone</title>" in text
    assert "Group: <code>Eng</code>" in text
    assert f'href="/acme/groups/{group.pk}/edit">Edit Group</a>' in text
    assert f'href="/acme/groups/{group.pk}/edit_actors">Edit Actors</a>' in text
    assert MANAGED not in text and SYNCED not in text
    assert "by Admin" in text
    assert f'id="actors-{jane.pk}"' in text and "Jane</a> (admin)" in text
    assert "jane@acme.test" in text
    assert "Backend</a> (service account)" in text
    assert "Search by Name or Email" in text
    assert f'href="/acme/policies/new?actor_group_id={group.pk}"' in text
    assert f'id="policies-{policy.pk}"' in text and ">Wiki</a>" in text
    assert f'id="policies-{off.pk}"' in text and "Disabled" in text
    assert "Search by Resource Name" in text
    assert "Delete Group" in text and "Confirm deletion of Group" in text
    assert "Are you sure you want to delete this Group and all related Policies?" in text

    text = _text(client.get(f"/acme/groups/{group.pk}", {"policies_filter[status]": "disabled"}))
    assert f"policies-{off.pk}" in text and f"policies-{policy.pk}" not in text
    filt = {"policies_filter[resource_name]": "wik"}
    text = _text(client.get(f"/acme/groups/{group.pk}", filt))
    assert f"policies-{policy.pk}" in text and f"policies-{off.pk}" not in text
    text = _text(client.get(f"/acme/groups/{group.pk}", {"actors_filter[name_or_email]": "jane@"}))
    assert f"actors-{jane.pk}" in text and f"actors-{sa.pk}" not in text


def test_empty_group_page(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    text = _text(client.get(f"/acme/groups/{group.pk}"))
    assert "There are no actors in this group." in text
    assert "No policies to display." in text
    assert f'href="/acme/policies/new?actor_group_id={group.pk}">Add a policy</a>' in text
    assert "to grant this Group access to Resources." in text


@pytest.mark.parametrize("kind", ["managed", "synced"])
def test_read_only_groups(client: Client, acme: Acme, kind: str) -> None:
    if kind == "managed":
        group, notice = everyone_group(acme.account), MANAGED
    else:
        group, notice = synced_group(acme.account, name="Sales"), SYNCED
    MembershipFactory(group=group, actor=acme.admin)
    text = _text(client.get(f"/acme/groups/{group.pk}"))
    assert notice in text
    assert "Edit Group" not in text and "Delete Group" not in text and "Edit Actors" not in text
    assert "Danger Zone" not in text
    assert f"actors-{acme.admin.pk}" in text
    for suffix in ("/edit", "/edit_actors"):
        response = client.get(f"/acme/groups/{group.pk}{suffix}")
        assert response.status_code == 404
        assert "Sorry, we couldn't find this page." in _text(response)
        assert client.post(f"/acme/groups/{group.pk}{suffix}", {"name": "X"}).status_code == 404
    # A forged delete event is refused.
    response = client.post(f"/acme/groups/{group.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == f"/acme/groups/{group.pk}"
    assert ActorGroup.objects.filter(pk=group.pk).exists()
    assert "Error!" in _text(client.get(response["Location"]))


def test_delete_group(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    MembershipFactory(group=group, actor=acme.admin)
    policy = _policy(group)
    response = client.post(f"/acme/groups/{group.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == "/acme/groups"
    assert not ActorGroup.objects.filter(pk=group.pk).exists()
    assert not Policy.objects.filter(pk=policy.pk).exists()


def test_unknown_event_just_reloads(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    response = client.post(f"/acme/groups/{group.pk}", {"action": "nope"})
    assert response.status_code == 302 and response["Location"] == f"/acme/groups/{group.pk}"
    assert ActorGroup.objects.filter(pk=group.pk).exists()


# --- edit ----------------------------------------------------------------------------------------


def test_edit_group(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    text = _text(client.get(f"/acme/groups/{group.pk}/edit"))
    assert "Edit Group: <code>Eng</code>" in text
    assert 'placeholder="Group Name"' in text and 'value="Eng"' in text
    assert f'href="/acme/groups/{group.pk}">Eng</a>' in text

    response = client.post(f"/acme/groups/{group.pk}/edit", {"name": "Engineering"})
    assert response.status_code == 302 and response["Location"] == f"/acme/groups/{group.pk}"
    group.refresh_from_db()
    assert group.name == "Engineering"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "can&#x27;t be blank"),
        ("x" * 256, "should be at most 255 character(s)"),
        ("Taken", "has already been taken"),
    ],
)
def test_edit_group_errors(client: Client, acme: Acme, name: str, error: str) -> None:
    GroupFactory(account=acme.account, name="Taken")
    group = GroupFactory(account=acme.account, name="Eng")
    response = client.post(f"/acme/groups/{group.pk}/edit", {"name": name})
    assert response.status_code == 200
    assert error in _text(response)
    group.refresh_from_db()
    assert group.name == "Eng"


# --- members -------------------------------------------------------------------------------------


def test_edit_actors_page(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    jane = _user(acme, "Jane")
    bob = _user(acme, "Bob", admin=True)
    MembershipFactory(group=group, actor=bob)
    path = f"/acme/groups/{group.pk}/edit_actors"

    text = _text(client.get(path))
    assert "<title>Edit Actors in Eng · Firezone</title>" in text
    assert f'href="/acme/groups/{group.pk}">Eng</a>' in text and "<li>Edit Actors</li>" in text
    assert f'id="actor-{jane.pk}"' in text and f'id="actor-{bob.pk}"' in text
    assert "Bob</a> (admin)" in text and "jane@acme.test" in text
    assert f'href="{path}?add={jane.pk}" id="toggle-actor-{jane.pk}">Add</a>' in text
    assert f'href="{path}?remove={bob.pk}" id="toggle-actor-{bob.pk}">Remove</a>' in text
    assert 'id="save-actors" disabled' in text
    assert "Search by Name or Email" in text

    text = _text(client.get(path, {"add": str(jane.pk), "remove": str(bob.pk)}))
    assert 'class="pending-add"' in text and 'class="pending-remove"' in text
    assert f'href="{path}?remove={bob.pk}" id="toggle-actor-{jane.pk}">Remove</a>' in text
    assert f'href="{path}?add={jane.pk}" id="toggle-actor-{bob.pk}">Add</a>' in text
    assert 'id="save-actors" disabled' not in text
    assert "Confirm changes to Group Actors" in text
    assert (
        "You're about to apply the following membership changes for the <strong>Eng</strong> group:"
    ) in text
    assert "+ Jane" in text and "&minus; Bob (admin)" in text
    # Pending changes survive the table's search.
    text = _text(client.get(path, {"add": str(jane.pk), "actors_filter[name_or_email]": "j"}))
    assert f'name="add" value="{jane.pk}"' in text


def test_edit_actors_ignores_no_op_pending(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    bob = _user(acme, "Bob")
    MembershipFactory(group=group, actor=bob)
    path = f"/acme/groups/{group.pk}/edit_actors"
    # Adding a member, removing a non-member, junk ids: nothing changes.
    text = _text(client.get(path, {"add": [str(bob.pk), "junk"], "remove": [str(acme.admin.pk)]}))
    assert 'id="save-actors" disabled' in text


def test_edit_actors_save(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    jane, bob, amy = _user(acme, "Jane"), _user(acme, "Bob"), _user(acme, "Amy")
    MembershipFactory(group=group, actor=bob)
    MembershipFactory(group=group, actor=amy)
    path = f"/acme/groups/{group.pk}/edit_actors"
    response = client.post(
        path, {"action": "save", "add": f"{jane.pk},{uuid.uuid4()}", "remove": str(bob.pk)}
    )
    assert response.status_code == 302 and response["Location"] == f"/acme/groups/{group.pk}"
    assert _members(group) == {jane.pk, amy.pk}
    text = _text(client.get(response["Location"]))
    assert f"actors-{jane.pk}" in text and f"actors-{bob.pk}" not in text


def test_edit_actors_post_without_save_changes_nothing(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Eng")
    jane = _user(acme, "Jane")
    response = client.post(f"/acme/groups/{group.pk}/edit_actors", {"add": str(jane.pk)})
    assert response.status_code == 302
    assert _members(group) == set()


def test_group_members_change_service(acme: Acme) -> None:
    subject = subject_for(acme.admin, identity=acme.admin_identity)
    group = GroupFactory(account=acme.account, name="Eng")
    jane, bob = _user(acme, "Jane"), _user(acme, "Bob")
    MembershipFactory(group=group, actor=bob)
    group_members_change(subject=subject, group=group, add=[jane, bob], remove=[])
    assert _members(group) == {jane.pk, bob.pk}
    group_members_change(subject=subject, group=group, add=[jane], remove=[jane.pk])
    assert _members(group) == {bob.pk}
    with pytest.raises(Refused):
        group_members_change(subject=subject, group=everyone_group(acme.account), add=[jane])
    provider = ProviderFactory(account=acme.account, oidc=True)
    with pytest.raises(Refused):
        group_members_change(
            subject=subject, group=synced_group(acme.account, provider=provider), add=[jane]
        )
