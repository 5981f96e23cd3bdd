"""ReassignUserResources and the ownership rules of disable and delete, through the real service."""

from __future__ import annotations

import grpc

from services.users.config import UsersConfig
from services.users.domain.model import License, UserStatus
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import work_pb2 as wpb
from tests.errors import call_fails
from tests.seed import add_user

MANUAL = apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL)
INTEGRATION = apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="etm")


def name(user) -> str:
    return f"users/{user.id}"


def assign(api, md, account, role, user, source=MANUAL):
    api.assignments.SetAssignment(
        apb.SetAssignmentRequest(account_id=account, role=role, user=apb.UserRef(user=name(user)), source=source),
        metadata=md,
    )


def task(api, md, account, user, title="Follow up"):
    return api.tasks.CreateTask(
        wpb.CreateTaskRequest(task=wpb.Task(account_id=account, title=title, assignee=name(user))), metadata=md
    )


def resource(api, md, kind, rid, owner, visibility=wpb.VISIBILITY_SHARED, **kw):
    return api.resources.RegisterResource(
        wpb.RegisterResourceRequest(
            resource=wpb.Resource(kind=kind, id=rid, display_name=rid, owner=name(owner), visibility=visibility, **kw)
        ),
        metadata=md,
    )


def owned(api, md, user):
    return sorted(
        r.name
        for r in api.resources.ListResources(
            wpb.ListResourcesRequest(owner=name(user), page_size=1000), metadata=md
        ).resources
    )


def holder(api, md, account, role="roles/success_manager"):
    team = api.assignments.GetAccountTeam(apb.GetAccountTeamRequest(account_id=account), metadata=md)
    return {a.role: a for a in team.assignments}.get(role)


def _leaver_with_everything(api, admin):
    db = api.db
    leaver = add_user(db, "leaver@example.com", first_name="Lee", last_name="Ver")
    heir = add_user(db, "heir@example.com")
    accounts_heir = add_user(db, "accounts@example.com")
    report = add_user(db, "report@example.com", manager_id=leaver.id)
    other = add_user(db, "other@example.com")
    api.assignments.CreateRole(
        apb.CreateRoleRequest(
            role=apb.Role(key="territory_owner", display_name="Territory", source=apb.ROLE_SOURCE_INTEGRATION_ONLY)
        ),
        metadata=admin,
    )
    for account in ("A1", "A2", "A3"):
        assign(api, admin, account, "roles/success_manager", leaver)
    assign(api, admin, "A1", "roles/territory_owner", leaver, INTEGRATION)
    open_task = task(api, admin, "A1", leaver)
    done_task = task(api, admin, "A2", leaver, "Done already")
    api.tasks.CompleteTask(wpb.CompleteTaskRequest(name=done_task.name), metadata=admin)
    resource(api, admin, wpb.RESOURCE_KIND_SEGMENT, "shared-seg", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_PLAY, "private-play", leaver, wpb.VISIBILITY_PRIVATE)
    resource(
        api,
        admin,
        wpb.RESOURCE_KIND_CAMPAIGN,
        "live",
        other,
        campaign_status=wpb.CAMPAIGN_STATUS_ACTIVE,
        senders=[name(leaver)],
        bcc=[name(other)],
    )
    resource(
        api,
        admin,
        wpb.RESOURCE_KIND_CAMPAIGN,
        "finished",
        other,
        campaign_status=wpb.CAMPAIGN_STATUS_COMPLETED,
        senders=[name(leaver)],
    )
    team = api.teams.CreateTeam(
        pb.CreateTeamRequest(team=pb.Team(display_name="EMEA", manager=name(leaver))), metadata=admin
    )
    api.teams.AddTeamMember(
        pb.AddTeamMemberRequest(team=team.name, user=name(leaver), role=pb.TEAM_ROLE_ADMIN), metadata=admin
    )
    return locals()


def _plan(w) -> pb.ReassignmentPlan:
    return pb.ReassignmentPlan(
        shared_resources_to=name(w["heir"]),
        private_resources_to=name(w["heir"]),
        accounts_and_tasks_to=name(w["accounts_heir"]),
        team_management_to=name(w["heir"]),
        team_memberships_to=name(w["heir"]),
    )


def test_dry_run_says_exactly_what_would_move_and_changes_nothing(users_api, admin):
    api = users_api()
    w = _leaver_with_everything(api, admin)
    summary = api.users.ReassignUserResources(
        pb.ReassignUserResourcesRequest(name=name(w["leaver"]), plan=_plan(w), dry_run=True), metadata=admin
    )
    assert summary.dry_run
    assert sorted(summary.assignments.ids) == [
        "A1/roles/success_manager",
        "A2/roles/success_manager",
        "A3/roles/success_manager",
    ]
    assert list(summary.kept_integration_only.ids) == ["A1/roles/territory_owner"]
    assert list(summary.open_tasks.ids) == [w["open_task"].name]
    assert list(summary.shared_resources.ids) == ["resources/segment/shared-seg"]
    assert list(summary.private_resources.ids) == ["resources/play/private-play"]
    assert list(summary.campaign_places.ids) == ["resources/campaign/live"]
    assert list(summary.direct_reports.ids) == [name(w["report"])]
    assert list(summary.managed_teams.ids) == [w["team"].name]
    assert list(summary.team_memberships.ids) == [w["team"].name]
    assert summary.assignments.target == name(w["accounts_heir"])
    assert holder(api, admin, "A1").user == name(w["leaver"])
    assert owned(api, admin, w["leaver"]) == ["resources/play/private-play", "resources/segment/shared-seg"]


def test_reassignment_moves_every_part_in_one_go(users_api, smtp, admin):
    api = users_api()
    w = _leaver_with_everything(api, admin)
    summary = api.users.ReassignUserResources(
        pb.ReassignUserResourcesRequest(name=name(w["leaver"]), plan=_plan(w)), metadata=admin
    )
    assert not summary.dry_run and summary.assignments.count == 3
    heir, accounts_heir = w["heir"], w["accounts_heir"]
    for account in ("A1", "A2", "A3"):
        moved = holder(api, admin, account)
        assert (moved.user, moved.source) == (name(accounts_heir), apb.ASSIGNMENT_SOURCE_REASSIGNMENT)
    assert holder(api, admin, "A1", "roles/territory_owner").user == name(w["leaver"])  # follows its source
    history = api.assignments.ListAssignmentHistory(
        apb.ListAssignmentHistoryRequest(user=name(accounts_heir)), metadata=admin
    ).changes
    assert sorted((c.account_id, c.previous_user, c.source) for c in history) == [
        (a, name(w["leaver"]), apb.ASSIGNMENT_SOURCE_REASSIGNMENT) for a in ("A1", "A2", "A3")
    ]
    tasks = {t.title: t for t in api.tasks.ListTasks(wpb.ListTasksRequest(), metadata=admin).tasks}
    assert tasks["Follow up"].assignee == name(accounts_heir)
    assert tasks["Done already"].assignee == name(w["leaver"])  # completed tasks stay
    assert owned(api, admin, w["leaver"]) == []
    assert owned(api, admin, heir) == ["resources/play/private-play", "resources/segment/shared-seg"]
    campaigns = {
        r.id: r
        for r in api.resources.ListResources(wpb.ListResourcesRequest(owner=name(w["other"])), metadata=admin).resources
    }
    assert list(campaigns["live"].senders) == [name(heir)]
    assert list(campaigns["finished"].senders) == [name(w["leaver"])]
    report = api.users.GetUser(pb.GetUserRequest(name=name(w["report"])), metadata=admin)
    assert report.manager == name(heir)
    team = api.teams.GetTeam(pb.GetTeamRequest(name=w["team"].name), metadata=admin)
    assert team.manager == name(heir)
    heir_now = api.users.GetUser(pb.GetUserRequest(name=name(heir)), metadata=admin)
    assert [(m.team, m.role) for m in heir_now.team_memberships] == [(w["team"].name, pb.TEAM_ROLE_ADMIN)]
    from steward.users.v1 import events_pb2 as epb

    stream = api.events.WatchEvents(epb.WatchEventsRequest(types=["assignment.set"]), metadata=admin, timeout=10)
    events = [next(stream) for _ in range(7)]  # 3 manual sets, the integration-only set, 3 reassignments
    stream.cancel()
    moved_events = [e for e in events if e.data["source"] == "REASSIGNMENT"]
    assert sorted(e.data["account_id"] for e in moved_events) == ["A1", "A2", "A3"]
    assert {(e.data["user"], e.data["previous_user"], e.data["attribute"]) for e in moved_events} == {
        (name(accounts_heir), name(w["leaver"]), "success_manager___tid")
    }
    assert moved_events[0].subject == "accounts/A1/roles/success_manager"
    (mail,) = smtp.wait_for("accounts@example.com")
    assert "3 accounts and 1 tasks" in mail["Subject"]


def test_conditions_refuse_before_anything_moves(users_api, admin):
    api = users_api(UsersConfig(employee_hierarchy=False))
    db = api.db
    contributor = add_user(db, "c@example.com", license=License.CONTRIBUTOR)
    practitioner = add_user(db, "p@example.com")
    viewer = add_user(db, "v@example.com", license=License.VIEWER)
    disabled = add_user(db, "d@example.com", status=UserStatus.DISABLED)
    ok = add_user(db, "ok@example.com")
    assign(api, admin, "A9", "roles/success_manager", practitioner)
    cases = [
        (contributor, pb.ReassignmentPlan(shared_resources_to=name(ok)), "SHARED_RESOURCES_NEED_PRACTITIONER"),
        (contributor, pb.ReassignmentPlan(team_management_to=name(ok)), "TEAM_MANAGEMENT_NEEDS_PRACTITIONER"),
        (practitioner, pb.ReassignmentPlan(team_management_to=name(ok)), "HIERARCHY_DISABLED"),
        (practitioner, pb.ReassignmentPlan(shared_resources_to=name(viewer)), "TARGET_CANNOT_OWN_SHARED"),
        (
            practitioner,
            pb.ReassignmentPlan(accounts_and_tasks_to=name(ok), private_resources_to=name(disabled)),
            "TARGET_NOT_ELIGIBLE",
        ),
        (practitioner, pb.ReassignmentPlan(accounts_and_tasks_to=name(practitioner)), "TARGET_IS_SOURCE"),
        (practitioner, pb.ReassignmentPlan(), "PLAN_EMPTY"),
    ]
    for source, plan, reason in cases:
        failure = call_fails(
            api.users.ReassignUserResources,
            pb.ReassignUserResourcesRequest(name=name(source), plan=plan),
            metadata=admin,
        )
        assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, reason), (plan, failure)
    assert holder(api, admin, "A9").user == name(practitioner)  # the refused plans moved nothing


def test_disabling_an_owner_needs_a_plan_and_runs_it_atomically(users_api, admin):
    api = users_api()
    w = _leaver_with_everything(api, admin)
    leaver = w["leaver"]
    refused = call_fails(api.users.DisableUser, pb.DisableUserRequest(name=name(leaver)), metadata=admin)
    assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "USER_OWNS_RESOURCES")
    owned_kinds = {v.subject for v in refused.precondition_violations}
    assert owned_kinds == {"assignments", "open_tasks", "shared_resources", "private_resources", "direct_reports"}
    partial = call_fails(
        api.users.DisableUser,
        pb.DisableUserRequest(
            name=name(leaver), reassignment=pb.ReassignmentPlan(accounts_and_tasks_to=name(w["heir"]))
        ),
        metadata=admin,
    )
    assert partial.reason == "USER_OWNS_RESOURCES"
    assert holder(api, admin, "A1").user == name(leaver)  # the partial plan did not half-run
    disabled = api.users.DisableUser(pb.DisableUserRequest(name=name(leaver), reassignment=_plan(w)), metadata=admin)
    assert disabled.status == pb.USER_STATUS_DISABLED
    assert holder(api, admin, "A2").user == name(w["accounts_heir"])


def test_bulk_disable_without_a_plan_releases_what_the_user_holds(users_api, admin):
    api = users_api()
    w = _leaver_with_everything(api, admin)
    leaver = w["leaver"]
    reply = api.users.BulkUserAction(
        pb.BulkUserActionRequest(action=pb.BULK_ACTION_DELETE, users=[name(leaver)]), metadata=admin
    )
    assert reply.done_count == 1
    assert holder(api, admin, "A1") is None and holder(api, admin, "A1", "roles/territory_owner") is None
    cleared = api.assignments.ListAssignmentHistory(
        apb.ListAssignmentHistoryRequest(account_id="A2"), metadata=admin
    ).changes[0]
    assert (cleared.user, cleared.previous_user) == ("", name(leaver))
    tasks = {t.title: t for t in api.tasks.ListTasks(wpb.ListTasksRequest(), metadata=admin).tasks}
    assert tasks["Follow up"].assignee == ""
    # Shared resources keep the deleted owner (who still resolves by id); private ones are gone.
    assert owned(api, admin, leaver) == ["resources/segment/shared-seg"]
    assert api.users.GetUser(pb.GetUserRequest(name=name(leaver)), metadata=admin).status == pb.USER_STATUS_DELETED


def test_moving_shared_resources_leaves_a_private_one_with_a_colliding_id(users_api, admin):
    api = users_api()
    leaver, heir = add_user(api.db, "leaver@example.com"), add_user(api.db, "heir@example.com")
    resource(api, admin, wpb.RESOURCE_KIND_SEGMENT, "x", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_REPORT, "y", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_SEGMENT, "y", leaver, wpb.VISIBILITY_PRIVATE)
    api.users.ReassignUserResources(
        pb.ReassignUserResourcesRequest(name=name(leaver), plan=pb.ReassignmentPlan(shared_resources_to=name(heir))),
        metadata=admin,
    )
    assert owned(api, admin, heir) == ["resources/report/y", "resources/segment/x"]
    assert owned(api, admin, leaver) == ["resources/segment/y"]
