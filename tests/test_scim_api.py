"""SCIM 2.0 over real HTTP against a real users service: what Okta and Entra ID send, the
lifecycle and license rules, deprovisioning with an heir, errors, filters, paging and groups.
Every outcome is read back through the gRPC API: SCIM and gRPC are one directory."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import grpc
import pytest

from services.users.config import UsersConfig
from services.users.domain.licenses import LicensePolicy
from services.users.domain.model import License, UserStatus
from steward.users.v1 import events_pb2 as epb
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import work_pb2 as wpb
from tests.scim_kit import CORE_GROUP, ENTERPRISE, STEWARD, Scim, scim_config, scim_of, scim_token, user_body
from tests.seed import add_user
from tests.test_reassignment import assign, holder, owned, resource, task


def grpc_user(api, admin, user_id: str):
    return api.users.GetUser(pb.GetUserRequest(name=f"users/{user_id}"), metadata=admin)


def live_user_count(api, admin) -> int:
    return len(api.users.ListUsers(pb.ListUsersRequest(page_size=1000), metadata=admin).users)


def events(api, admin, types: list[str], count: int) -> list[epb.Event]:
    stream = api.events.WatchEvents(epb.WatchEventsRequest(types=types), metadata=admin, timeout=10)
    try:
        return [next(stream) for _ in range(count)]
    finally:
        stream.cancel()


@pytest.fixture
def scim_api(users_api):
    """(users api, SCIM client): an SSO organisation (new users ACTIVE)."""

    def _start(config: UsersConfig | None = None, **scim: object) -> tuple[object, Scim]:
        api = users_api(scim_config(config, **scim))
        return api, scim_of(api)

    return _start


# -- access and discovery ----------------------------------------------------------------------


def test_discovery_is_truthful_and_public_only_where_rfc_7643_says(scim_api):
    _, scim = scim_api()
    config = scim.as_("").request("GET", "/ServiceProviderConfig")
    assert config.status == 200
    body = config.body
    assert (body["patch"]["supported"], body["bulk"]["supported"], body["sort"]["supported"]) == (True, False, False)
    assert (body["etag"]["supported"], body["filter"]["supported"], body["filter"]["maxResults"]) == (True, True, 500)
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert scim.as_("").request("GET", "/Schemas").status == 401
    schemas = {s["id"] for s in scim.request("GET", "/Schemas").body["Resources"]}
    assert {STEWARD, ENTERPRISE, CORE_GROUP} <= schemas
    types = {t["name"]: t for t in scim.request("GET", "/ResourceTypes").body["Resources"]}
    assert [e["schema"] for e in types["User"]["schemaExtensions"]] == [ENTERPRISE, STEWARD]


def test_only_tokens_with_the_scim_scope_get_in(scim_api):
    _, scim = scim_api()
    cases = [
        ("", 401),
        ("not-a-jwt", 401),
        (scim_token(ttl_seconds=-10), 401),
        (scim_token(scopes=("users.manage",)), 403),
        (scim_token(), 200),
    ]
    for token, status in cases:
        reply = scim.as_(token).request("GET", "/Users")
        assert reply.status == status, (token, reply.body)
        if status != 200:
            assert reply.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert reply.body["status"] == str(status) and reply.body["detail"]
    assert scim.request("GET", "/Nowhere").status == 404


# -- what identity providers send ---------------------------------------------------------------


def test_okta_looks_up_creates_and_deactivates_with_a_pathless_replace(scim_api, admin):
    api, scim = scim_api()
    assert scim.find_users('userName eq "grace@acme.io"').body["totalResults"] == 0
    created = scim.create_user("grace@acme.io", externalId="00u1okta")
    assert created["active"] is True and created["meta"]["location"].endswith(f"/Users/{created['id']}")
    found = scim.find_users('userName eq "GRACE@acme.io"').body  # userName is case-insensitive
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    user = grpc_user(api, admin, created["id"])
    assert (user.email, user.first_name, user.last_name, user.status) == (
        "grace@acme.io",
        "Grace",
        "Hopper",
        pb.USER_STATUS_ACTIVE,
    )
    reply = scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": False}})
    assert reply.status == 200 and reply.body["active"] is False
    assert grpc_user(api, admin, created["id"]).status == pb.USER_STATUS_DISABLED
    created_event, disabled_event = events(api, admin, ["user.created", "user.disabled"], 2)
    assert created_event.actor == disabled_event.actor == "service:okta"
    assert disabled_event.data["previous_status"] == "ACTIVE"
    back = scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": True}})
    assert back.body["active"] is True
    assert grpc_user(api, admin, created["id"]).status == pb.USER_STATUS_ACTIVE


def test_entra_id_dialect_capitalised_ops_string_booleans_filtered_paths_and_extra_attributes(scim_api, admin):
    api, scim = scim_api(UsersConfig(uuid_mode=True))
    body = user_body("alan@acme.io", externalId="e-1", title="Engineer", preferredLanguage="en-GB")
    body[ENTERPRISE] = {"employeeNumber": "42", "department": "R&D"}  # not kept: dropped, not refused
    created = scim.request("POST", "/Users", body)
    assert created.status == 201, created.body
    uid = created.body["id"]
    assert "title" not in created.body
    reply = scim.patch(
        f"/Users/{uid}",
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "alan.turing@acme.io"},
        {"op": "Replace", "path": "name.givenName", "value": "Alan"},
        {"op": "Add", "path": "externalId", "value": "e-2"},
    )
    assert reply.status == 200, reply.body
    user = grpc_user(api, admin, uid)
    assert (user.email, user.first_name) == ("alan.turing@acme.io", "Alan")
    assert scim.find_users('externalId eq "e-2"').body["Resources"][0]["id"] == uid
    off = scim.patch(f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
    assert off.status == 200 and off.body["active"] is False
    assert grpc_user(api, admin, uid).status == pb.USER_STATUS_DISABLED


def test_new_users_are_invited_unless_the_organisation_signs_in_through_its_provider(scim_api, smtp, admin):
    api, scim = scim_api(create_status=UserStatus.CREATED)
    invited = scim.create_user("ada@acme.io")
    assert grpc_user(api, admin, invited["id"]).status == pb.USER_STATUS_CREATED
    assert smtp.wait_for("ada@acme.io")[0]["Subject"] == "You are invited to Steward"
    # The product's rule: an invited user is neither disabled nor activated; cancel instead.
    refused = scim.patch(f"/Users/{invited['id']}", {"op": "replace", "path": "active", "value": False})
    assert (refused.status, refused.detail.split(":")[0]) == (409, "TRANSITION_NOT_ALLOWED")
    parked = scim.create_user("bob@acme.io", active=False)
    assert grpc_user(api, admin, parked["id"]).status == pb.USER_STATUS_CREATED_DISABLED
    assert scim.request("DELETE", f"/Users/{invited['id']}").status == 204
    assert scim.request("GET", f"/Users/{invited['id']}").status == 404
    assert grpc_user(api, admin, invited["id"]).status == pb.USER_STATUS_DELETED
    again = scim.create_user("ada@acme.io")  # a deleted user's userName and email are free again
    assert again["id"] != invited["id"]


# -- licenses, manager, one transaction ----------------------------------------------------------


def test_license_rules_are_the_grpc_rules(scim_api, admin):
    limits = LicensePolicy({License.PRACTITIONER: 1})
    api, scim = scim_api(UsersConfig(licenses=limits))
    first = scim.create_user("p1@acme.io", **{STEWARD: {"license": "PRACTITIONER"}})
    assert first[STEWARD] == {"license": "PRACTITIONER"}
    before = live_user_count(api, admin)
    full = scim.request("POST", "/Users", user_body("p2@acme.io", **{STEWARD: {"license": "PRACTITIONER"}}))
    assert full.status == 409 and "PRACTITIONER" in full.detail
    assert live_user_count(api, admin) == before  # nothing half-written
    viewer = scim.create_user("v1@acme.io")  # no license given: the default, left to Steward admins
    assert STEWARD not in viewer or "license" not in viewer[STEWARD]
    assert grpc_user(api, admin, viewer["id"]).license == pb.LICENSE_VIEWER
    asked = scim.request("GET", f"/Users/{viewer['id']}?attributes={STEWARD}:currentLicense")
    assert asked.body[STEWARD] == {"currentLicense": "VIEWER"}
    downgrade = scim.patch(f"/Users/{first['id']}", {"op": "replace", "path": f"{STEWARD}:license", "value": "VIEWER"})
    assert (downgrade.status, downgrade.detail.split(":")[0]) == (409, "LICENSE_DOWNGRADE_NOT_ALLOWED")
    unmanaged = scim.patch(f"/Users/{first['id']}", {"op": "remove", "path": f"{STEWARD}:license"})
    assert unmanaged.status == 200 and "license" not in unmanaged.body.get(STEWARD, {})
    assert grpc_user(api, admin, first["id"]).license == pb.LICENSE_PRACTITIONER  # kept, now Steward's to manage


def test_manager_is_the_employee_hierarchy(scim_api, admin):
    api, scim = scim_api()
    boss = scim.create_user("boss@acme.io")
    worker = scim.create_user("worker@acme.io", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    assert worker[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert worker[ENTERPRISE]["manager"]["$ref"].endswith(f"/Users/{boss['id']}")
    assert grpc_user(api, admin, worker["id"]).manager == f"users/{boss['id']}"
    cycle = scim.patch(
        f"/Users/{boss['id']}", {"op": "add", "path": f"{ENTERPRISE}:manager.value", "value": worker["id"]}
    )
    assert (cycle.status, cycle.detail.split(":")[0]) == (409, "MANAGER_CYCLE")
    ghost = scim.request("POST", "/Users", user_body("x@acme.io", **{ENTERPRISE: {"manager": {"value": "nobody"}}}))
    assert ghost.status == 400 and ghost.scim_type == "invalidValue"


def test_bad_requests_are_told_apart_and_change_nothing(scim_api, admin):
    api, scim = scim_api()
    grace = scim.create_user("grace@acme.io")
    before = live_user_count(api, admin)
    cases = [
        (scim.request("POST", "/Users", raw=b'{"userName": '), 400, "invalidSyntax"),
        (scim.request("POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}), 400, None),
        (scim.request("POST", "/Users", user_body("grace@acme.io")), 409, "uniqueness"),
        (scim.request("POST", "/Users", user_body("other", emails=[{"value": "GRACE@acme.io"}])), 409, "uniqueness"),
        (scim.request("POST", "/Users", user_body("y", emails=[{"value": "not-an-email"}])), 400, "invalidValue"),
        (scim.find_users('userName zz "x"'), 400, "invalidFilter"),
        (scim.find_users('title eq "x"'), 400, "invalidFilter"),
        (scim.patch(f"/Users/{grace['id']}", {"op": "explode", "path": "active"}), 400, None),
        (scim.request("PUT", f"/Users/{grace['id']}", user_body("grace@acme.io"), If_Match='W/"999"'), 412, None),
        (scim.request("GET", "/Users/no-such-user"), 404, None),
    ]
    for reply, status, scim_type in cases:
        assert reply.status == status, reply.body
        if scim_type:
            assert reply.scim_type == scim_type, reply.body
    # Outside UUID mode the email is the login, and changing it is a mutability error.
    moved = scim.patch(f"/Users/{grace['id']}", {"op": "replace", "path": "emails", "value": [{"value": "g@b.io"}]})
    assert (moved.status, moved.scim_type) == (400, "mutability")
    assert live_user_count(api, admin) == before
    assert grpc_user(api, admin, grace["id"]).email == "grace@acme.io"


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("recursion_limit", [1_000, 50_000])
def test_json_nested_past_any_resource_is_a_syntax_error_whatever_the_recursion_limit(scim_api, recursion_limit):
    """A recursion bomb is a 400, not a 500: with the default limit json.loads gives up, and with a
    raised one (a library in the process may raise it) it parses and the depth check refuses it."""
    _, scim = scim_api()
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit)
    try:
        bombs = [
            b"[" * 100_000,
            b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
            json.dumps(user_body("deep@acme.io", title=nested(40))).encode(),
        ]
        for raw in bombs:
            reply = scim.request("POST", "/Users", raw=raw)
            assert (reply.status, reply.scim_type) == (400, "invalidSyntax"), reply.body
            assert "nested deeper than 32 levels" in reply.detail
    finally:
        sys.setrecursionlimit(before)
    assert scim.request("POST", "/Users", user_body("shallow@acme.io")).status == 201


def test_etags_follow_every_change(scim_api):
    _, scim = scim_api()
    grace = scim.create_user("grace@acme.io")
    got = scim.request("GET", f"/Users/{grace['id']}")
    assert got.headers["etag"] == grace["meta"]["version"]
    changed = scim.patch(f"/Users/{grace['id']}", {"op": "add", "path": "externalId", "value": "x1"})
    assert changed.body["meta"]["version"] != grace["meta"]["version"]
    stale = scim.request("DELETE", f"/Users/{grace['id']}", If_Match=grace["meta"]["version"])
    assert stale.status == 412
    assert scim.request("DELETE", f"/Users/{grace['id']}", If_Match=changed.body["meta"]["version"]).status == 204


# -- deprovisioning -----------------------------------------------------------------------------


def _leaver(api, admin, **fields):
    """A practitioner owning two accounts, an open task, a shared and a private resource."""
    leaver = add_user(api.db, "leaver@acme.io", first_name="Lee", last_name="Ver", **fields)
    for account in ("A1", "A2"):
        assign(api, admin, account, "roles/success_manager", leaver)
    task(api, admin, "A1", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_SEGMENT, "shared-seg", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_PLAY, "private-play", leaver, wpb.VISIBILITY_PRIVATE)
    return leaver


def _history(api, admin, user):
    from steward.users.v1 import assignments_pb2 as apb

    changes = api.assignments.ListAssignmentHistory(
        apb.ListAssignmentHistoryRequest(user=f"users/{user.id}"), metadata=admin
    ).changes
    return sorted((c.account_id, c.previous_user, c.source) for c in changes)


def test_a_deactivated_owner_hands_everything_to_their_manager(scim_api, smtp, admin):
    from steward.users.v1 import assignments_pb2 as apb

    api, scim = scim_api()
    add_user(api.db, "admin@acme.io", global_admin=True)
    manager = add_user(api.db, "manager@acme.io")
    leaver = _leaver(api, admin, manager_id=manager.id)
    reply = scim.patch(f"/Users/{leaver.id}", {"op": "replace", "value": {"active": False}})
    assert reply.status == 200, reply.body
    for account in ("A1", "A2"):
        assert holder(api, admin, account).user == f"users/{manager.id}"
    assert _history(api, admin, manager) == [
        (a, f"users/{leaver.id}", apb.ASSIGNMENT_SOURCE_REASSIGNMENT) for a in ("A1", "A2")
    ]
    tasks = api.tasks.ListTasks(wpb.ListTasksRequest(), metadata=admin).tasks
    assert [t.assignee for t in tasks] == [f"users/{manager.id}"]
    assert owned(api, admin, manager) == ["resources/play/private-play", "resources/segment/shared-seg"]
    assert owned(api, admin, leaver) == []
    assert grpc_user(api, admin, leaver.id).status == pb.USER_STATUS_DISABLED
    (mail,) = smtp.wait_for("admin@acme.io")
    assert "Lee Ver <leaver@acme.io> was deactivated" in mail["Subject"]
    body = mail.get_payload()
    assert "2 account assignments: moved to Ada Lovelace <manager@acme.io>" in body
    assert "1 shared resources: moved to" in body
    (reassigned,) = events(api, admin, ["user.reassigned"], 1)
    assert (reassigned.actor, reassigned.data["assignments"]) == ("service:okta", 2)


def test_without_a_manager_the_configured_heir_inherits(scim_api, admin):
    api, scim = scim_api(deprovision_heir="heir@acme.io")
    heir = add_user(api.db, "heir@acme.io", license=License.VIEWER)
    leaver = _leaver(api, admin)
    assert scim.request("DELETE", f"/Users/{leaver.id}").status == 204
    assert holder(api, admin, "A1").user == f"users/{heir.id}"
    # A viewer cannot own shared resources: that part stays with its owner, as a bulk delete leaves it.
    assert owned(api, admin, heir) == ["resources/play/private-play"]
    assert owned(api, admin, leaver) == ["resources/segment/shared-seg"]
    assert grpc_user(api, admin, leaver.id).status == pb.USER_STATUS_DELETED


def test_with_no_heir_it_is_released_as_a_bulk_disable_releases_it(scim_api, admin):
    api, scim = scim_api(deprovision_heir="gone@acme.io")  # names nobody: no heir
    loner = _leaver(api, admin)
    assert scim.patch(f"/Users/{loner.id}", {"op": "replace", "path": "active", "value": False}).status == 200
    assert holder(api, admin, "A1") is None
    assert [t.assignee for t in api.tasks.ListTasks(wpb.ListTasksRequest(), metadata=admin).tasks] == [""]
    assert owned(api, admin, loner) == ["resources/segment/shared-seg"]
    assert grpc_user(api, admin, loner.id).status == pb.USER_STATUS_DISABLED


def test_a_global_admin_cannot_be_deactivated_and_nothing_moves(scim_api, admin):
    api, scim = scim_api()
    manager = add_user(api.db, "manager@acme.io")
    boss = add_user(api.db, "boss@acme.io", global_admin=True, manager_id=manager.id)
    assign(api, admin, "A1", "roles/success_manager", boss)
    for request in (
        scim.patch(f"/Users/{boss.id}", {"op": "replace", "value": {"active": False, "name": {"givenName": "X"}}}),
        scim.request("DELETE", f"/Users/{boss.id}"),
    ):
        assert (request.status, request.detail.split(":")[0]) == (409, "GLOBAL_ADMIN_PROTECTED")
    assert holder(api, admin, "A1").user == f"users/{boss.id}"
    user = grpc_user(api, admin, boss.id)
    assert (user.status, user.first_name) == (pb.USER_STATUS_ACTIVE, "Ada")


# -- filters and paging -------------------------------------------------------------------------


def test_filters_run_in_the_database_with_paging(scim_api):
    _, scim = scim_api()
    for i, (given, domain) in enumerate([("Ann", "acme"), ("Bob", "acme"), ("Cid", "beta"), ("Dee", "acme")]):
        scim.create_user(
            f"{given.lower()}@{domain}.io", name={"givenName": given, "familyName": "Smith"}, externalId=f"x{i}"
        )
    scim.create_user("eve@acme.io", active=False)

    def ids(expression: str, **params: int) -> list[str]:
        reply = scim.find_users(expression, **params)
        assert reply.status == 200, reply.body
        return [r["userName"] for r in reply.body["Resources"]]

    assert ids('userName sw "b"') == ["bob@acme.io"]
    assert ids('emails.value co "@acme"') == ["ann@acme.io", "bob@acme.io", "dee@acme.io", "eve@acme.io"]
    assert ids('name.givenName eq "ann" or name.givenName eq "CID"') == ["ann@acme.io", "cid@beta.io"]
    assert ids('emails co "acme" and active eq false') == ["eve@acme.io"]
    assert ids('externalId pr and not (userName ew "acme.io")') == ["cid@beta.io"]
    assert ids('emails[type eq "work" and value sw "dee"]') == ["dee@acme.io"]
    page = scim.find_users('emails co "@"', startIndex=2, count=2).body
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["userName"] for r in page["Resources"]] == ["bob@acme.io", "cid@beta.io"]
    listed = scim.request("GET", "/Users?count=0").body
    assert (listed["totalResults"], listed.get("Resources", [])) == (5, [])


# -- groups -------------------------------------------------------------------------------------


def test_groups_are_teams_with_members(scim_api, admin):
    api, scim = scim_api()
    ann, bob, cid = (scim.create_user(f"{n}@acme.io")["id"] for n in ("ann", "bob", "cid"))
    created = scim.request(
        "POST",
        "/Groups",
        {"schemas": [CORE_GROUP], "displayName": "EMEA", "externalId": "g1", "members": [{"value": ann}]},
    )
    assert created.status == 201, created.body
    gid = created.body["id"]

    def members() -> list[str]:
        listed = api.teams.ListTeamMembers(pb.ListTeamMembersRequest(team=f"teams/{gid}"), metadata=admin).members
        return sorted(m.user.removeprefix("users/") for m in listed)

    assert members() == [ann]
    added = scim.patch(f"/Groups/{gid}", {"op": "Add", "path": "members", "value": [{"value": bob}, {"value": cid}]})
    assert added.status == 200, added.body
    assert members() == sorted([ann, bob, cid])
    removed = scim.patch(f"/Groups/{gid}", {"op": "Remove", "path": f'members[value eq "{bob}"]'})
    assert removed.status == 200 and members() == sorted([ann, cid])
    # Entra ID's way: remove with the members as the value.
    entra = scim.patch(f"/Groups/{gid}", {"op": "Remove", "path": "members", "value": [{"value": cid}]})
    assert entra.status == 200 and members() == [ann]
    scim.patch(f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": cid}]})
    renamed = scim.patch(f"/Groups/{gid}", {"op": "Replace", "path": "displayName", "value": "EMEA North"})
    assert renamed.body["displayName"] == "EMEA North"
    assert api.teams.GetTeam(pb.GetTeamRequest(name=f"teams/{gid}"), metadata=admin).display_name == "EMEA North"
    found = scim.request("GET", f"/Groups?filter=members%20eq%20%22{cid}%22").body
    assert [g["id"] for g in found["Resources"]] == [gid]
    assert len(found["Resources"][0]["members"]) == 2
    lean = scim.request("GET", f"/Groups/{gid}?excludedAttributes=members").body
    assert "members" not in lean and lean["displayName"] == "EMEA North"
    duplicate = scim.request("POST", "/Groups", {"schemas": [CORE_GROUP], "displayName": "emea north"})
    assert (duplicate.status, duplicate.scim_type) == (409, "uniqueness")
    ghost = scim.patch(f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": "nobody"}]})
    assert ghost.status == 400 and members() == sorted([ann, cid])
    assert scim.request("DELETE", f"/Groups/{gid}").status == 204
    with pytest.raises(grpc.RpcError) as gone:
        api.teams.GetTeam(pb.GetTeamRequest(name=f"teams/{gid}"), metadata=admin)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert grpc_user(api, admin, ann).status == pb.USER_STATUS_ACTIVE  # users stay


def test_root_search_lists_users_then_groups(scim_api):
    _, scim = scim_api()
    scim.create_user("ann@acme.io")
    scim.request("POST", "/Groups", {"schemas": [CORE_GROUP], "displayName": "Team"})
    reply = scim.request("POST", "/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
    assert reply.status == 200 and reply.body["totalResults"] == 2
    assert [r["meta"]["resourceType"] for r in reply.body["Resources"]] == ["User", "Group"]


def test_scim_stops_with_the_service(scim_api):
    api, scim = scim_api()
    assert scim.request("GET", "/Users").status == 200
    api.running.runtime.stop(grace=1)
    time.sleep(0.2)
    with pytest.raises(OSError):
        scim.request("GET", "/Users")
