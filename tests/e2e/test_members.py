"""Members, teams and who am I over Sigma's API (contract section 12), on the store of the run
(SQLite, or PostgreSQL with CONNREG_E2E_BACKEND=postgres). Every 2xx body is validated against
Sigma's schema of its operation (expect_ok) and the contract's object (check_member,
check_team). Each test works in an organization of its own."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from conftest import (Api, check_error, check_member, check_team, conn_body, expect_ok,
                      walk_pages as walk)

M = "/v2/members"
T = "/v2/teams"
C = "/v2/connections"


def email(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def new_member(admin: Api, **fields) -> dict:
    body = {"email": email(), "firstName": "Ann", "lastName": "Lee", **fields}
    return check_member(expect_ok(admin.post(M, body), "createMember"),
                        organization_id=admin.organization_id)


def client_of(server, member: dict) -> Api:
    """An API client of `member` (made with the operator CLI, as clients are)."""
    creds = server.cli_json("client", "create", "--member", member["memberId"])
    api = Api(server, creds["clientId"], creds["clientSecret"])
    api.organization_id = member["organizationId"]
    api.member_id = member["memberId"]
    return api


def new_team(admin: Api, **fields) -> dict:
    body = {"name": f"team-{uuid.uuid4().hex[:8]}", **fields}
    return check_team(expect_ok(admin.post(T, body), "createTeam"), with_members=True)


def get_member(api: Api, member_id: str) -> dict:
    return check_member(expect_ok(api.get(f"{M}/{member_id}"), "getMember"))


def patch_member(api: Api, member_id: str, body: dict) -> requests.Response:
    return api.patch(f"{M}/{member_id}", body)


def team_member_ids(admin: Api, team_id: str) -> list[str]:
    return check_team(expect_ok(admin.get(f"{T}/{team_id}"), "getTeam"), with_members=True)["members"]


@pytest.fixture
def admin(server) -> Api:
    return server.new_org_admin()


# ---- who am I ----------------------------------------------------------------------------------

def test_whoami_answers_anyone_with_a_token(server, admin):
    me = expect_ok(admin.get("/v2/whoami"), "whoami")
    assert me == {"userId": admin.member_id, "organizationId": admin.organization_id,
                  "memberType": "admin", "email": me["email"]}
    viewer = client_of(server, new_member(admin, memberType="viewer", email="Viewer.One@Example.com"))
    assert expect_ok(viewer.get("/v2/whoami"), "whoami") == {
        "userId": viewer.member_id, "organizationId": admin.organization_id,
        "memberType": "viewer", "email": "Viewer.One@Example.com"}
    check_error(requests.get(server.url("/v2/whoami"), timeout=30), 401, "unauthorized")


# ---- members: the routes -----------------------------------------------------------------------

def test_member_lifecycle_through_every_route(server, admin):
    created = new_member(admin, email="  Ann.Lee@Example.COM ", memberType="Explorer")
    mid = created["memberId"]
    assert created["email"] == "Ann.Lee@Example.COM"  # trimmed, case kept
    assert created["memberType"] == "explorer"  # any case in, lower case out
    assert (created["firstName"], created["lastName"]) == ("Ann", "Lee")
    assert created["createdBy"] == created["updatedBy"] == admin.member_id
    assert created["isArchived"] is False and created["isInactive"] is False
    assert get_member(admin, mid) == created
    again = get_member(admin, mid)
    assert again["homeFolderId"] == created["homeFolderId"]

    changed = check_member(expect_ok(patch_member(admin, mid, {
        "memberType": "CREATOR", "firstName": " Anna ", "lastName": "", "email": "anna@example.com"}),
        "updateMember"))
    assert (changed["memberType"], changed["firstName"], changed["lastName"], changed["email"]) == \
        ("creator", "Anna", "", "anna@example.com")
    assert changed["updatedAt"] >= created["updatedAt"]
    assert get_member(admin, mid) == changed
    # An empty change changes nothing, not even updatedAt.
    assert expect_ok(patch_member(admin, mid, {}), "updateMember") == changed

    assert expect_ok(admin.delete(f"{M}/{mid}"), "deleteMember") == {}
    gone = get_member(admin, mid)
    assert gone["isArchived"] is True and gone["isInactive"] is False
    assert expect_ok(admin.delete(f"{M}/{mid}"), "deleteMember") == {}  # again: no change
    assert get_member(admin, mid)["updatedAt"] == gone["updatedAt"]
    back = check_member(expect_ok(patch_member(admin, mid, {"isArchived": False}), "updateMember"))
    assert back["isArchived"] is False
    inactive = check_member(expect_ok(patch_member(admin, mid, {"isInactive": True}), "updateMember"))
    assert inactive["isInactive"] is True


def test_fields_of_sigmas_schemas_without_a_meaning_here_are_accepted_and_ignored(server, admin):
    r = admin.post(M + "?sendInvite=true", {"email": email(), "firstName": "G", "lastName": "H",
                                            "isGuest": True, "userKind": "guest", "addToTeams": []})
    m = check_member(expect_ok(r, "createMember"))
    assert m["userKind"] == "internal" and m["memberType"] == "viewer"
    r = patch_member(admin, m["memberId"], {"profileImgUrl": "https://img.example/x.png", "userKind": "embed",
                                            "newOwnerId": admin.member_id, "archiveDocuments": True,
                                            "archiveScheduledExports": False})
    assert check_member(expect_ok(r, "updateMember")) == m
    t = new_team(admin, createTeamFolder=True)
    assert t["members"] == []


@pytest.mark.parametrize("body, field", [
    ({"firstName": "A", "lastName": "B"}, "email"),
    ({"email": "no-at.example.com", "firstName": "A", "lastName": "B"}, "email"),
    ({"email": "two@@example.com", "firstName": "A", "lastName": "B"}, "email"),
    ({"email": "a b@example.com", "firstName": "A", "lastName": "B"}, "email"),
    ({"email": "@example.com", "firstName": "A", "lastName": "B"}, "email"),
    ({"email": "x" * 250 + "@e.com", "firstName": "A", "lastName": "B"}, "email"),
    ({"email": 7, "firstName": "A", "lastName": "B"}, "email"),
    ({"email": "a@b.c", "lastName": "B"}, "firstName"),
    ({"email": "a@b.c", "firstName": "A"}, "lastName"),
    ({"email": "a@b.c", "firstName": "", "lastName": "B"}, "firstName"),
    ({"email": "a@b.c", "firstName": "A\u0085B", "lastName": "B"}, "firstName"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B\u202eC"}, "lastName"),
    ({"email": "a@b.c", "firstName": "A", "lastName": None}, "lastName"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "memberType": "owner"}, "memberType"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "userKind": "robot"}, "userKind"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "isGuest": "yes"}, "isGuest"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "isAdmin": True}, "isAdmin"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "addToTeams": [{}]}, "addToTeams[0].teamId"),
    ({"email": "a@b.c", "firstName": "A", "lastName": "B", "addToTeams": [{"teamId": "t", "x": 1}]},
     "addToTeams[0].x"),
])
def test_bad_member_bodies_are_400_naming_the_field(server, admin, body, field):
    r = admin.post(M, body)
    assert field in check_error(r, 400, "bad_request")["message"]
    assert expect_ok(admin.get(M, params={"email": "a@b.c"}), "listMembers")["total"] == 0


@pytest.mark.parametrize("body, field", [
    ({"memberType": "root"}, "memberType"), ({"isArchived": "true"}, "isArchived"),
    ({"isInactive": None}, "isInactive"), ({"email": "nope"}, "email"), ({"firstName": "  "}, "firstName"),
    ({"archiveDocuments": 1}, "archiveDocuments"), ({"newOwnerId": 5}, "newOwnerId"),
    ({"accountType": "admin"}, "accountType"),
])
def test_bad_member_patches_are_400_naming_the_field_and_change_nothing(server, admin, body, field):
    m = new_member(admin)
    assert field in check_error(patch_member(admin, m["memberId"], body), 400)["message"]
    assert get_member(admin, m["memberId"]) == m


def test_malformed_json_and_other_media_types(server, admin):
    check_error(admin.post(M, data="{", content_type="application/json"), 400, "bad_request")
    check_error(admin.post(M, data="email=a@b.c", content_type="text/plain"), 415)
    check_error(admin.post(M, [1, 2]), 400)


# ---- members: listing --------------------------------------------------------------------------

def test_member_listing_pages_by_email_and_filters(server, admin):
    tag = uuid.uuid4().hex[:6]
    made = [new_member(admin, email=f"{tag}-{i:02d}@Example.com", firstName=f"First{i}",
                       lastName="Zed" if i % 3 == 0 else "Other")
            for i in range(7)]
    archived, inactive = made[1]["memberId"], made[2]["memberId"]
    assert admin.delete(f"{M}/{archived}").status_code == 200
    assert patch_member(admin, inactive, {"isInactive": True}).status_code == 200

    everyone, totals = walk(admin, M, "listMembers", 2, includeArchived="true", includeInactive="true")
    ids = [m["memberId"] for m in everyone]
    assert len(ids) == len(set(ids)) == 8  # the org's admin and the seven
    assert totals == {8}
    keys = [(m["email"].lower(), m["memberId"]) for m in everyone]
    assert keys == sorted(keys), "ordered by email (case-insensitively) then memberId"
    for m in everyone:
        check_member(m, organization_id=admin.organization_id)

    active, totals = walk(admin, M, "listMembers", 3, search=tag)
    assert {m["memberId"] for m in active} == {m["memberId"] for m in made} - {archived, inactive}
    assert totals == {5}
    with_archived, _ = walk(admin, M, "listMembers", 50, search=tag, includeArchived="true")
    assert archived in {m["memberId"] for m in with_archived}
    assert inactive not in {m["memberId"] for m in with_archived}
    with_inactive, _ = walk(admin, M, "listMembers", 50, search=tag, includeInactive="true")
    assert {m["memberId"] for m in with_inactive} >= {inactive} and archived not in \
        {m["memberId"] for m in with_inactive}

    exact = expect_ok(admin.get(M, params={"email": f"{tag.upper()}-04@EXAMPLE.COM"}), "listMembers")
    assert [m["memberId"] for m in exact["entries"]] == [made[4]["memberId"]] and exact["total"] == 1
    by_name = expect_ok(admin.get(M, params={"search": "first5"}), "listMembers")
    assert [m["memberId"] for m in by_name["entries"]] == [made[5]["memberId"]]
    by_last = expect_ok(admin.get(M, params={"search": "ZED", "limit": 50}), "listMembers")
    assert {m["memberId"] for m in by_last["entries"]} == {made[0]["memberId"], made[3]["memberId"],
                                                           made[6]["memberId"]}
    full_name = expect_ok(admin.get(M, params={"search": "first6 zed"}), "listMembers")
    assert [m["memberId"] for m in full_name["entries"]] == [made[6]["memberId"]]


def test_member_listing_without_limit_is_the_page_object_and_numeric_pages_count(server, admin):
    tag = uuid.uuid4().hex[:6]
    for i in range(3):
        new_member(admin, email=f"{tag}{i}@example.com")
    plain = expect_ok(admin.get(M, params={"search": tag}), "listMembers")
    assert set(plain) == {"entries", "nextPage", "hasMore", "total"} and plain["total"] == 3
    second = expect_ok(admin.get(M, params={"search": tag, "limit": 1, "page": 2}), "listMembers")
    assert second["entries"][0]["email"] == f"{tag}1@example.com" and second["total"] == 3


def test_member_page_tokens_are_tamper_evident_and_bound_to_their_filters(server, admin):
    tag = uuid.uuid4().hex[:6]
    for i in range(3):
        new_member(admin, email=f"{tag}{i}@example.com")
    first = expect_ok(admin.get(M, params={"search": tag, "limit": 1}), "listMembers")
    token = first["nextPage"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    check_error(admin.get(M, params={"search": tag, "limit": 1, "page": forged}), 400)
    check_error(admin.get(M, params={"search": tag + "0", "limit": 1, "page": token}), 400)
    check_error(admin.get(T, params={"limit": 1, "page": token}), 400)
    other = server.new_org_admin()
    check_error(other.get(M, params={"search": tag, "limit": 1, "page": token}), 400)
    for bad in ({"limit": 0}, {"limit": "x"}, {"includeArchived": "maybe"}, {"page": "0"}):
        check_error(admin.get(M, params=bad), 400)


# ---- members: the email rule -------------------------------------------------------------------

def test_a_second_active_member_with_the_same_email_is_409(server, admin):
    a = new_member(admin, email="Same@Example.com")
    r = admin.post(M, {"email": " same@EXAMPLE.com", "firstName": "B", "lastName": "B"})
    assert "same@example.com" in check_error(r, 409, "conflict")["message"].lower()
    b = new_member(admin, email="other@example.com")
    check_error(patch_member(admin, b["memberId"], {"email": "SAME@example.com"}), 409, "conflict")
    assert get_member(admin, b["memberId"])["email"] == "other@example.com"
    # Another organization may have the same address.
    assert server.new_org_admin().post(M, {"email": "same@example.com", "firstName": "C",
                                           "lastName": "C"}).status_code == 200
    # A deactivated member frees its address; reactivating it once taken again is a 409.
    assert admin.delete(f"{M}/{a['memberId']}").status_code == 200
    c = new_member(admin, email="same@example.com")
    check_error(patch_member(admin, a["memberId"], {"isArchived": False}), 409, "conflict")
    assert get_member(admin, a["memberId"])["isArchived"] is True
    assert patch_member(admin, c["memberId"], {"isInactive": True}).status_code == 200
    assert patch_member(admin, a["memberId"], {"isArchived": False}).status_code == 200
    # The CLI goes through the same rule.
    r = server.cli("member", "create", "--org", admin.organization_id, "--email", "SAME@example.com",
                   check=False)
    assert r.returncode == 1 and "email" in r.stderr


# ---- permissions -------------------------------------------------------------------------------

def test_a_viewer_gets_403_on_admin_routes_and_reads_itself(server, admin):
    other = new_member(admin)
    team = new_team(admin, members=[other["memberId"]])
    viewer_member = new_member(admin, memberType="viewer")
    viewer = client_of(server, viewer_member)
    vid, oid, tid = viewer.member_id, other["memberId"], team["teamId"]
    forbidden = [("GET", M, None), ("POST", M, {"email": email(), "firstName": "x", "lastName": "y"}),
                 ("GET", f"{M}/{oid}", None), ("PATCH", f"{M}/{oid}", {"firstName": "x"}),
                 ("PATCH", f"{M}/{vid}", {"memberType": "admin"}), ("DELETE", f"{M}/{oid}", None),
                 ("DELETE", f"{M}/{vid}", None), ("GET", f"{M}/{oid}/teams", None), ("GET", T, None),
                 ("POST", T, {"name": "x"}), ("GET", f"{T}/{tid}", None), ("PATCH", f"{T}/{tid}", {"name": "x"}),
                 ("DELETE", f"{T}/{tid}", None), ("GET", f"{T}/{tid}/members", None),
                 ("PATCH", f"{T}/{tid}/members", {"add": [vid]})]
    for method, path, body in forbidden:
        check_error(viewer.request(method, path, json_body=body), 403, "forbidden")
    assert get_member(viewer, vid) == get_member(admin, vid)
    assert get_member(admin, vid)["memberType"] == "viewer"
    assert team_member_ids(admin, tid) == [oid]
    mine = expect_ok(viewer.get(f"{M}/{vid}/teams"), "listMemberTeams")
    assert mine["entries"] == [] and mine["total"] == 0
    assert expect_ok(admin.patch(f"{T}/{tid}/members", {"add": [vid]}), "updateTeamMembers") == {}
    mine = expect_ok(viewer.get(f"{M}/{vid}/teams"), "listMemberTeams")
    assert [check_team(t, with_members=False)["teamId"] for t in mine["entries"]] == [tid]


def test_ids_of_another_organization_answer_404(server, admin):
    m = new_member(admin)
    t = new_team(admin, members=[m["memberId"]])
    intruder = server.new_org_admin()
    for method, path, body in [("GET", f"{M}/{m['memberId']}", None),
                               ("PATCH", f"{M}/{m['memberId']}", {"firstName": "x"}),
                               ("DELETE", f"{M}/{m['memberId']}", None),
                               ("GET", f"{M}/{m['memberId']}/teams", None),
                               ("GET", f"{T}/{t['teamId']}", None),
                               ("PATCH", f"{T}/{t['teamId']}", {"name": "x"}),
                               ("DELETE", f"{T}/{t['teamId']}", None),
                               ("GET", f"{T}/{t['teamId']}/members", None),
                               ("PATCH", f"{T}/{t['teamId']}/members", {"add": []}),
                               ("GET", f"{M}/{'x' * 300}", None), ("GET", f"{T}/no-such-team", None)]:
        check_error(intruder.request(method, path, json_body=body), 404, "not_found")
    assert get_member(admin, m["memberId"]) == m
    assert team_member_ids(admin, t["teamId"]) == [m["memberId"]]
    # Nor can another organization's member join one's teams, or one join another's team.
    mine = new_team(intruder)
    check_error(intruder.patch(f"{T}/{mine['teamId']}/members", {"add": [m["memberId"]]}), 400)
    r = intruder.post(M, {"email": email(), "firstName": "x", "lastName": "y",
                          "addToTeams": [{"teamId": t["teamId"]}]})
    assert t["teamId"] in check_error(r, 400)["message"]
    assert intruder.post(T, {"name": "x", "members": [m["memberId"]]}).status_code == 400
    assert expect_ok(intruder.get(M, params={"limit": 50}), "listMembers")["total"] == 1


# ---- deactivation is a security event ----------------------------------------------------------

def test_a_deactivated_members_tokens_and_clients_fail_at_once_and_work_again_after(server, admin):
    member = new_member(admin, memberType="admin")
    api = client_of(server, member)
    tokens = api.fetch_token()
    assert api.get("/v2/whoami").status_code == 200
    assert expect_ok(admin.delete(f"{M}/{member['memberId']}"), "deleteMember") == {}
    check_error(api.get("/v2/whoami"), 401, "unauthorized")
    check_error(requests.get(server.url(C), headers={"Authorization": f"Bearer {tokens['access_token']}"},
                             timeout=30), 401, "unauthorized")
    r = requests.post(server.url("/v2/auth/token"), timeout=30, data={
        "grant_type": "client_credentials", "client_id": api.client_id, "client_secret": api.client_secret})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    r = requests.post(server.url("/v2/auth/token"), timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    # Reactivated, its clients work again with new tokens; the old ones stay dead.
    assert patch_member(admin, member["memberId"], {"isArchived": False}).status_code == 200
    api._token = None
    assert expect_ok(api.get("/v2/whoami"), "whoami")["userId"] == member["memberId"]
    check_error(requests.get(server.url(C), headers={"Authorization": f"Bearer {tokens['access_token']}"},
                             timeout=30), 401, "unauthorized")
    # isInactive does the same.
    assert patch_member(admin, member["memberId"], {"isInactive": True}).status_code == 200
    check_error(api.get("/v2/whoami"), 401, "unauthorized")


# ---- the last active admin ---------------------------------------------------------------------

def test_the_last_active_admin_cannot_be_demoted_deactivated_or_archived(server, admin):
    me = admin.member_id
    for body in ({"memberType": "viewer"}, {"isArchived": True}, {"isInactive": True}):
        assert "last active admin" in check_error(patch_member(admin, me, body), 409, "conflict")["message"]
    check_error(admin.delete(f"{M}/{me}"), 409, "conflict")
    assert get_member(admin, me)["memberType"] == "admin"
    # An inactive admin does not count; an active second one does.
    idle = new_member(admin, memberType="admin")
    assert patch_member(admin, idle["memberId"], {"isInactive": True}).status_code == 200
    check_error(patch_member(admin, me, {"memberType": "creator"}), 409)
    second = client_of(server, new_member(admin, memberType="ADMIN"))
    assert expect_ok(patch_member(second, me, {"memberType": "creator"}), "updateMember")["memberType"] == "creator"
    check_error(admin.get(M), 403)  # the token now acts as a creator
    check_error(second.delete(f"{M}/{second.member_id}"), 409)
    assert second.delete(f"{M}/{idle['memberId']}").status_code == 200  # not an active admin


@pytest.mark.parametrize("round_", range(5))
def test_two_admins_demoting_each_other_at_once_exactly_one_wins(server, admin, round_):
    a = client_of(server, new_member(admin, memberType="admin"))
    b = client_of(server, new_member(admin, memberType="admin"))
    # Leave a and b as the only active admins, their tokens already issued.
    assert patch_member(a, admin.member_id, {"memberType": "viewer"}).status_code == 200
    assert b.token and a.token
    barrier = threading.Barrier(2)
    results = {}

    def demote(actor: Api, target: str) -> None:
        barrier.wait()
        results[actor.member_id] = patch_member(actor, target, {"memberType": "viewer"})

    threads = [threading.Thread(target=demote, args=(a, b.member_id)),
               threading.Thread(target=demote, args=(b, a.member_id))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results.values())
    # The loser is refused by the last-admin rule (409), or, when its request is authenticated
    # after the winner's committed, as the viewer it has become (403): never both 200.
    assert statuses in ([200, 403], [200, 409]), {k: (r.status_code, r.text) for k, r in results.items()}
    winner, loser = (a, b) if results[a.member_id].status_code == 200 else (b, a)
    if results[loser.member_id].status_code == 409:
        assert "last active admin" in results[loser.member_id].json()["message"]
    members, _ = walk(winner, M, "listMembers", 50)
    assert [m["memberId"] for m in members if m["memberType"] == "admin"] == [winner.member_id]


# ---- teams -------------------------------------------------------------------------------------

def test_team_lifecycle_through_every_route(server, admin):
    m1, m2 = new_member(admin), new_member(admin)
    t = new_team(admin, name="Analysts", description="The analysts", visibility="public",
                 members=[m2["memberId"], m1["memberId"]])
    tid = t["teamId"]
    assert (t["name"], t["description"], t["visibility"], t["isArchived"]) == \
        ("Analysts", "The analysts", "public", False)
    assert t["members"] == sorted([m1["memberId"], m2["memberId"]])
    assert check_team(expect_ok(admin.get(f"{T}/{tid}"), "getTeam"), with_members=True) == t
    p = check_team(expect_ok(admin.patch(f"{T}/{tid}", {"name": "Analysts 2", "description": None,
                                                        "visibility": "private"}), "updateTeam"),
                   with_members=True)
    assert (p["name"], p["description"], p["visibility"]) == ("Analysts 2", None, "private")
    assert p["members"] == t["members"]

    page = expect_ok(admin.get(f"{T}/{tid}/members"), "getTeamMembers")
    assert page["total"] == 2 and {e["userId"] for e in page["entries"]} == set(t["members"])
    assert all(e == {"userId": e["userId"], "isTeamAdmin": False, "addedBy": admin.member_id}
               for e in page["entries"]), page
    assert expect_ok(admin.patch(f"{T}/{tid}/members", {"remove": [m1["memberId"]]}),
                     "updateTeamMembers") == {}
    assert team_member_ids(admin, tid) == [m2["memberId"]]
    listed = expect_ok(admin.get(T, params={"name": "analysts 2"}), "listTeams")
    assert [check_team(e, with_members=False)["teamId"] for e in listed["entries"]] == [tid]

    assert expect_ok(admin.delete(f"{T}/{tid}"), "deleteTeam") == {}
    archived = check_team(expect_ok(admin.get(f"{T}/{tid}"), "getTeam"), with_members=True)
    assert archived["isArchived"] is True
    assert expect_ok(admin.delete(f"{T}/{tid}"), "deleteTeam") == {}
    assert expect_ok(admin.get(T, params={"name": "analysts 2"}), "listTeams")["total"] == 0
    check_error(admin.patch(f"{T}/{tid}", {"name": "again"}), 409, "conflict")
    check_error(admin.patch(f"{T}/{tid}/members", {"add": [m1["memberId"]]}), 409, "conflict")
    assert expect_ok(admin.get(f"{M}/{m2['memberId']}/teams"), "listMemberTeams")["total"] == 0
    # The archived team freed its name.
    assert new_team(admin, name="ANALYSTS 2")["name"] == "ANALYSTS 2"


def test_team_names_are_unique_among_active_teams_case_insensitively(server, admin):
    a = new_team(admin, name="Data")
    check_error(admin.post(T, {"name": " data "}), 409, "conflict")
    b = new_team(admin, name="Data 2")
    check_error(admin.patch(f"{T}/{b['teamId']}", {"name": "DATA"}), 409, "conflict")
    assert expect_ok(admin.patch(f"{T}/{a['teamId']}", {"name": "data"}), "updateTeam")["name"] == "data"
    assert server.new_org_admin().post(T, {"name": "Data"}).status_code == 200  # another org


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 256}, "name"), ({"name": "a\tb"}, "name"),
    ({"name": "n", "visibility": "secret"}, "visibility"), ({"name": "n", "members": "m"}, "members"),
    ({"name": "n", "members": ["a", "a"]}, "members[1]"), ({"name": "n", "members": [""]}, "members[0]"),
    ({"name": "n", "description": 5}, "description"), ({"name": "n", "createTeamFolder": "y"}, "createTeamFolder"),
    ({"name": "n", "workspaceId": "w"}, "workspaceId"),
])
def test_bad_team_bodies_are_400_naming_the_field(server, admin, body, field):
    assert field in check_error(admin.post(T, body), 400)["message"]


def test_team_membership_changes_are_all_or_nothing(server, admin):
    m1, m2, m3 = new_member(admin), new_member(admin), new_member(admin)
    t = new_team(admin, members=[m1["memberId"]])
    tid = t["teamId"]
    r = admin.patch(f"{T}/{tid}/members", {"add": [m2["memberId"], "no-such-member"], "remove": [m1["memberId"]]})
    assert "no-such-member" in check_error(r, 400)["message"]
    assert team_member_ids(admin, tid) == [m1["memberId"]]
    for body, field in (({"add": [m2["memberId"]], "remove": [m2["memberId"]]}, "remove[0]"),
                        ({"add": "x"}, "add"), ({"invite": []}, "invite")):
        assert field in check_error(admin.patch(f"{T}/{tid}/members", body), 400)["message"]
    # An inactive member cannot join a team, but may be removed from one (taking access away is
    # never refused).
    assert patch_member(admin, m3["memberId"], {"isInactive": True}).status_code == 200
    assert m3["memberId"] in check_error(admin.patch(f"{T}/{tid}/members", {"add": [m3["memberId"]]}),
                                         400)["message"]
    assert patch_member(admin, m1["memberId"], {"isArchived": True}).status_code == 200
    assert admin.patch(f"{T}/{tid}/members", {"remove": [m1["memberId"]]}).status_code == 200
    assert team_member_ids(admin, tid) == []
    assert patch_member(admin, m1["memberId"], {"isArchived": False}).status_code == 200
    assert admin.patch(f"{T}/{tid}/members", {"add": [m1["memberId"]]}).status_code == 200
    # Adding twice and removing someone not in the team change nothing.
    assert admin.patch(f"{T}/{tid}/members", {"add": [m1["memberId"], m2["memberId"]],
                                              "remove": [new_member(admin)["memberId"]]}).status_code == 200
    assert team_member_ids(admin, tid) == sorted([m1["memberId"], m2["memberId"]])


def test_team_listing_pages_and_filters(server, admin):
    tag = uuid.uuid4().hex[:6]
    made = [new_team(admin, name=f"{tag}-{i}", visibility="public" if i % 2 else "private",
                     description="Blue" if i == 3 else None) for i in range(5)]
    teams, totals = walk(admin, T, "listTeams", 2)
    assert [t["teamId"] for t in teams] == [t["teamId"] for t in made] and totals == {5}
    public = expect_ok(admin.get(T, params={"visibility": "public"}), "listTeams")
    assert {t["teamId"] for t in public["entries"]} == {made[1]["teamId"], made[3]["teamId"]}
    blue = expect_ok(admin.get(T, params={"description": "BLUE"}), "listTeams")
    assert [t["teamId"] for t in blue["entries"]] == [made[3]["teamId"]]
    check_error(admin.get(T, params={"visibility": "hidden"}), 400)
    member = new_member(admin, addToTeams=[{"teamId": t["teamId"], "isTeamAdmin": i == 0}
                                           for i, t in enumerate(made)])
    theirs, totals = walk(admin, f"{M}/{member['memberId']}/teams", "listMemberTeams", 2)
    assert [t["teamId"] for t in theirs] == [t["teamId"] for t in made] and totals == {5}
    entries, _ = walk(admin, f"{T}/{made[0]['teamId']}/members", "getTeamMembers", 1)
    assert entries == [{"userId": member["memberId"], "isTeamAdmin": True, "addedBy": admin.member_id}]
    # addToTeams is all or nothing.
    r = admin.post(M, {"email": email(), "firstName": "x", "lastName": "y",
                       "addToTeams": [{"teamId": made[0]["teamId"]}, {"teamId": "no-such-team"}]})
    assert "no-such-team" in check_error(r, 400)["message"]


# ---- grants through teams follow membership ----------------------------------------------------

def test_a_team_grant_appears_and_disappears_with_membership(server, admin):
    viewer = client_of(server, new_member(admin, memberType="viewer"))
    vid = viewer.member_id
    conn = admin.create(conn_body())
    cid = conn["connectionId"]
    team = new_team(admin)
    tid = team["teamId"]
    r = admin.post(f"{C}/{cid}/grants", {"grants": [{"grantee": {"teamId": tid}, "permission": "usage"}]})
    assert r.status_code == 200, r.text

    def sees() -> bool:
        listed = cid in {c["connectionId"] for c in viewer.list_all()}
        got = viewer.get(f"{C}/{cid}")
        assert got.status_code in (200, 403), got.text
        assert listed == (got.status_code == 200), (listed, got.status_code)
        return listed

    assert not sees()
    assert admin.patch(f"{T}/{tid}/members", {"add": [vid]}).status_code == 200
    assert sees()
    assert admin.patch(f"{T}/{tid}/members", {"remove": [vid]}).status_code == 200
    assert not sees()
    assert admin.patch(f"{T}/{tid}/members", {"add": [vid]}).status_code == 200
    assert sees()
    assert admin.delete(f"{T}/{tid}").status_code == 200  # an archived team grants nothing
    assert not sees()
    # A direct grant gives nothing while the member is inactive, and again once reactivated.
    r = admin.post(f"{C}/{cid}/grants", {"grants": [{"grantee": {"memberId": vid}, "permission": "usage"}]})
    assert r.status_code == 200 and sees()
    assert admin.delete(f"{M}/{vid}").status_code == 200
    check_error(viewer.get(f"{C}/{cid}"), 401)
    assert patch_member(admin, vid, {"isArchived": False}).status_code == 200
    viewer._token = None
    assert sees()


# ---- the operator CLI shares the implementation ------------------------------------------------

def test_cli_member_create_makes_the_same_object_as_the_api(server, admin):
    out = server.cli_json("member", "create", "--org", admin.organization_id, "--email", "Cli.User@Example.com",
                          "--account-type", "Explorer")
    assert out["accountType"] == out["memberType"] == "explorer"  # the CLI's field stays
    cli_member = {k: v for k, v in out.items() if k != "accountType"}
    check_member(cli_member, organization_id=admin.organization_id)
    assert (cli_member["firstName"], cli_member["lastName"]) == ("Cli.User", "")
    assert cli_member["createdBy"] == "connreg-cli"
    assert get_member(admin, out["memberId"]) == cli_member
    named = server.cli_json("member", "create", "--org", admin.organization_id, "--email", email(),
                            "--first-name", "Grace", "--last-name", "Hopper")
    assert (named["firstName"], named["lastName"], named["accountType"]) == ("Grace", "Hopper", "viewer")
    for args, words in ((["--email", "not-an-email"], "email"), (["--email", email(), "--account-type", "owner"],
                                                                   "memberType"),
                        (["--email", email(), "--first-name", "a\u202eb"], "firstName")):
        r = server.cli("member", "create", "--org", admin.organization_id, *args, check=False)
        assert r.returncode == 1 and words in r.stderr, r.stderr
    r = server.cli("member", "create", "--org", "no-such-org", "--email", email(), check=False)
    assert r.returncode == 1 and "organization" in r.stderr


def test_cli_team_commands_share_the_api_rules(server, admin):
    out = server.cli_json("team", "create", "--org", admin.organization_id, "--name", "Ops")
    assert out["organizationId"] == admin.organization_id
    team = {k: v for k, v in out.items() if k != "organizationId"}
    check_team(team, with_members=True)
    assert (team["name"], team["members"], team["createdBy"]) == ("Ops", [], "connreg-cli")
    assert check_team(expect_ok(admin.get(f"{T}/{team['teamId']}"), "getTeam"), with_members=True) == team
    r = server.cli("team", "create", "--org", admin.organization_id, "--name", "OPS", check=False)
    assert r.returncode == 1 and "named" in r.stderr
    m = new_member(admin)
    assert server.cli_json("team", "add-member", "--team", team["teamId"], "--member", m["memberId"]) == \
        {"teamId": team["teamId"], "memberId": m["memberId"]}
    assert team_member_ids(admin, team["teamId"]) == [m["memberId"]]
    entries = expect_ok(admin.get(f"{T}/{team['teamId']}/members"), "getTeamMembers")["entries"]
    assert entries == [{"userId": m["memberId"], "isTeamAdmin": False, "addedBy": "connreg-cli"}]
    other = server.new_org_admin()
    r = server.cli("team", "add-member", "--team", team["teamId"], "--member", other.member_id, check=False)
    assert r.returncode == 1
