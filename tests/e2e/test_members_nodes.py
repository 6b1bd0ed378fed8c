"""Members and teams over two connreg nodes sharing one PostgreSQL database (the `nodes` of
test_two_nodes.py, a real server from pg_support.py): deactivation and team membership take
effect on the other node at once, and the last-admin rule holds between nodes."""

from __future__ import annotations

import threading
import uuid

import requests

from conftest import Api, check_error, conn_body, expect_ok
from test_two_nodes import bearer, nodes  # noqa: F401 (the fixture)

M = "/v2/members"
T = "/v2/teams"


def member_with_client(node, admin_token: str, member_type: str) -> Api:
    body = {"email": f"{uuid.uuid4().hex[:10]}@example.com", "firstName": "N", "lastName": "Ode",
            "memberType": member_type}
    m = expect_ok(requests.post(node.url(M), headers=bearer(admin_token), json=body, timeout=30),
                  "createMember")
    creds = node.cli_json("client", "create", "--member", m["memberId"])
    api = Api(node, creds["clientId"], creds["clientSecret"])
    api.organization_id, api.member_id = m["organizationId"], m["memberId"]
    return api


def test_a_member_deactivated_on_one_node_is_refused_by_the_other_at_once(nodes):  # noqa: F811
    a, b = nodes
    admin = a.new_org_admin()
    member = member_with_client(a, admin.token, "creator")
    token = member.token
    assert requests.get(b.url("/v2/whoami"), headers=bearer(token), timeout=30).status_code == 200
    r = requests.delete(a.url(f"{M}/{member.member_id}"), headers=bearer(admin.token), timeout=30)
    assert expect_ok(r, "deleteMember") == {}
    check_error(requests.get(b.url("/v2/whoami"), headers=bearer(token), timeout=30), 401, "unauthorized")
    check_error(requests.get(b.url("/v2/connections"), headers=bearer(token), timeout=30), 401)
    # Reactivated on B, its client gets a token that A honours.
    r = requests.patch(b.url(f"{M}/{member.member_id}"), headers=bearer(admin.token),
                       json={"isArchived": False}, timeout=30)
    assert expect_ok(r, "updateMember")["isArchived"] is False
    fresh = requests.post(a.url("/v2/auth/token"), timeout=30, data={
        "grant_type": "client_credentials", "client_id": member.client_id,
        "client_secret": member.client_secret}).json()["access_token"]
    assert requests.get(b.url("/v2/whoami"), headers=bearer(fresh), timeout=30).status_code == 200


def test_a_team_grant_removed_on_one_node_is_gone_on_the_other_at_once(nodes):  # noqa: F811
    a, b = nodes
    admin = a.new_org_admin()
    viewer = member_with_client(a, admin.token, "viewer")
    cid = requests.post(a.url("/v2/connections"), headers=bearer(admin.token), json=conn_body(),
                        timeout=30).json()["connectionId"]
    team = expect_ok(requests.post(a.url(T), headers=bearer(admin.token),
                                   json={"name": "t", "members": [viewer.member_id]}, timeout=30),
                     "createTeam")
    r = requests.post(a.url(f"/v2/connections/{cid}/grants"), headers=bearer(admin.token), timeout=30,
                      json={"grants": [{"grantee": {"teamId": team["teamId"]}, "permission": "usage"}]})
    assert r.status_code == 200, r.text
    assert requests.get(b.url(f"/v2/connections/{cid}"), headers=bearer(viewer.token),
                        timeout=30).status_code == 200
    r = requests.patch(a.url(f"{T}/{team['teamId']}/members"), headers=bearer(admin.token),
                       json={"remove": [viewer.member_id]}, timeout=30)
    assert r.status_code == 200, r.text
    check_error(requests.get(b.url(f"/v2/connections/{cid}"), headers=bearer(viewer.token), timeout=30),
                403, "forbidden")


def test_two_admins_demoting_each_other_on_two_nodes_exactly_one_wins(nodes):  # noqa: F811
    a, b = nodes
    for _ in range(5):
        admin = a.new_org_admin()
        x = member_with_client(a, admin.token, "admin")
        y = member_with_client(b, admin.token, "admin")
        r = requests.patch(a.url(f"{M}/{admin.member_id}"), headers=bearer(x.token),
                           json={"memberType": "viewer"}, timeout=30)
        assert r.status_code == 200, r.text
        tokens = {x.member_id: x.token, y.member_id: y.token}
        barrier = threading.Barrier(2)
        results = {}

        def demote(node, actor: str, target: str) -> None:
            barrier.wait()
            results[actor] = requests.patch(node.url(f"{M}/{target}"), headers=bearer(tokens[actor]),
                                            json={"memberType": "viewer"}, timeout=30)

        threads = [threading.Thread(target=demote, args=(a, x.member_id, y.member_id)),
                   threading.Thread(target=demote, args=(b, y.member_id, x.member_id))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status_code for r in results.values())
        assert statuses in ([200, 403], [200, 409]), {k: (r.status_code, r.text) for k, r in results.items()}
        winner = x if results[x.member_id].status_code == 200 else y
        listed = requests.get(b.url(M), headers=bearer(winner.token), params={"limit": 50}, timeout=30)
        admins = [m["memberId"] for m in expect_ok(listed, "listMembers")["entries"]
                  if m["memberType"] == "admin"]
        assert admins == [winner.member_id]
