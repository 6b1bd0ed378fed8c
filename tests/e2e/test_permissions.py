"""Issue 3: the permission table of contract section 1 on every route, grants (section 8), the
token lifecycle of section 2 (refresh rotation, reuse detection, revocation), sample
connections, rate limiting and CORS. Real binary on port 0, fresh SQLite store."""
import time

import pytest
import requests

from conftest import check_error, conn_body, schemas, start_server, stop_and_check, uniq

C = "/v2/connections"


@pytest.fixture(scope="module")
def world(server):
    """An admin, a creator holding a direct grant, a viewer holding a team grant, a member with
    no grant, and the admin of another organization."""
    admin = server.api()
    org = admin.organization_id
    creator = server.new_member_client(org, "creator")
    viewer = server.new_member_client(org, "viewer")
    nogrant = server.new_member_client(org, "viewer")
    other = server.new_org_admin("Other Org")
    team = server.cli_json("team", "create", "--org", org, "--name", "analysts")
    assert team["organizationId"] == org and team["teamId"]
    server.cli_json("team", "add-member", "--team", team["teamId"], "--member", viewer.member_id)
    granted = admin.create(conn_body("postgres", name=uniq("granted")))
    private = admin.create(conn_body("mysql", name=uniq("private")))
    r = admin.post(f"{C}/{granted['connectionId']}/grants", {"grants": [
        {"grantee": {"memberId": creator.member_id}, "permission": "usage"},
        {"grantee": {"teamId": team["teamId"]}, "permission": "annotate"}]})
    assert r.status_code == 200, r.text
    assert r.json() == {}
    return dict(admin=admin, creator=creator, viewer=viewer, nogrant=nogrant, other=other,
                team=team["teamId"], granted=granted["connectionId"],
                private=private["connectionId"])


def ids(page):
    return {e["connectionId"] for e in page["entries"]}


# ---- the permission table ----------------------------------------------------------------

@pytest.mark.parametrize("who", ["creator", "viewer", "nogrant"])
def test_non_admins_cannot_create(world, who):
    check_error(world[who].post(C, conn_body()), 403, "forbidden")


@pytest.mark.parametrize("who", ["creator", "viewer", "nogrant"])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_non_admins_cannot_change(world, who, method):
    body = None if method == "DELETE" else conn_body()
    r = world[who].request(method, f"{C}/{world['granted']}", json_body=body)
    check_error(r, 403, "forbidden")


@pytest.mark.parametrize("who", ["creator", "viewer", "nogrant"])
def test_non_admins_cannot_test(world, who):
    check_error(world[who].get(f"{C}/{world['granted']}/test"), 403, "forbidden")
    check_error(world[who].post(f"{C}/test", conn_body()), 403, "forbidden")


@pytest.mark.parametrize("who", ["creator", "viewer"])
def test_granted_members_read_what_they_hold(world, who):
    api = world[who]
    assert api.get_conn(world["granted"])["connectionId"] == world["granted"]
    check_error(api.get(f"{C}/{world['private']}"), 403, "forbidden")
    page = api.list()
    assert ids(page) == {world["granted"]}
    assert page["total"] == 1


def test_member_without_grant_sees_nothing(world):
    api = world["nogrant"]
    page = api.list()
    assert page["entries"] == [] and page["total"] == 0 and page["hasMore"] is False
    check_error(api.get(f"{C}/{world['granted']}"), 403, "forbidden")


def test_admin_sees_everything_of_its_org(world):
    page_ids = {c["connectionId"] for c in world["admin"].list_all()}
    assert {world["granted"], world["private"]} <= page_ids


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("PUT", ""), ("PATCH", ""), ("DELETE", ""),
                                           ("GET", "/test"), ("POST", "/test"),
                                           ("GET", "/grants"), ("POST", "/grants")])
def test_other_organization_gets_404_everywhere(world, method, suffix):
    body = None
    if method in ("PUT", "PATCH"):
        body = conn_body()
    elif suffix == "/grants" and method == "POST":
        body = {"grants": [{"grantee": {"memberId": world["other"].member_id}, "permission": "usage"}]}
    r = world["other"].request(method, f"{C}/{world['granted']}{suffix}", json_body=body)
    check_error(r, 404, "not_found")
    assert world["granted"] not in ids(world["other"].list())


def test_other_organization_cannot_delete_a_grant(world):
    grants = world["admin"].get(f"{C}/{world['granted']}/grants").json()["entries"]
    r = world["other"].delete(f"{C}/{world['granted']}/grants/{grants[0]['grantId']}")
    check_error(r, 404, "not_found")


@pytest.mark.parametrize("who", ["creator", "viewer", "nogrant"])
def test_grants_are_admin_only(world, who):
    api = world[who]
    check_error(api.get(f"{C}/{world['granted']}/grants"), 403, "forbidden")
    check_error(api.post(f"{C}/{world['granted']}/grants", {"grants": [
        {"grantee": {"memberId": api.member_id}, "permission": "usage"}]}), 403, "forbidden")


# ---- grants ------------------------------------------------------------------------------

def test_grant_list_shape_and_schema(world):
    r = world["admin"].get(f"{C}/{world['granted']}/grants")
    assert r.status_code == 200
    page = r.json()
    schemas().validate("listConnectionGrants", 200, page)
    assert page["total"] == 2 and page["hasMore"] is False and page["nextPage"] is None
    by_grantee = {(g["memberId"], g["teamId"]): g for g in page["entries"]}
    assert (world["creator"].member_id, None) in by_grantee
    assert (None, world["team"]) in by_grantee
    for g in page["entries"]:
        assert g["inodeId"] == world["granted"]
        assert g["organizationId"] == world["admin"].organization_id
        assert g["createdBy"] == world["admin"].member_id


def test_grant_repeat_changes_permission_without_duplicating(server, world):
    admin = world["admin"]
    c = admin.create(conn_body())["connectionId"]
    member = server.new_member_client(admin.organization_id, "viewer")
    for permission in ("usage", "annotate", "annotate"):
        r = admin.post(f"{C}/{c}/grants", {"grants": [
            {"grantee": {"memberId": member.member_id}, "permission": permission}]})
        assert r.status_code == 200, r.text
        schemas().validate("createConnectionGrant", 200, r.json())
    entries = admin.get(f"{C}/{c}/grants").json()["entries"]
    assert len(entries) == 1 and entries[0]["permission"] == "annotate"


def test_grant_batch_is_all_or_nothing(world):
    admin = world["admin"]
    c = admin.create(conn_body())["connectionId"]
    r = admin.post(f"{C}/{c}/grants", {"grants": [
        {"grantee": {"memberId": world["creator"].member_id}, "permission": "usage"},
        {"grantee": {"memberId": "no-such-member"}, "permission": "usage"}]})
    body = check_error(r, 400, "bad_request")
    assert "no-such-member" in body["message"]
    assert admin.get(f"{C}/{c}/grants").json()["total"] == 0


@pytest.mark.parametrize("grants", [
    [{"grantee": {"memberId": "x"}, "permission": "owner"}],
    [{"grantee": {"memberId": "x", "teamId": "y"}, "permission": "usage"}],
    [{"grantee": {}, "permission": "usage"}],
    [{"grantee": {"memberId": 7}, "permission": "usage"}],
    [{"grantee": {"memberId": "x"}, "permission": "usage", "extra": 1}],
    [],
    "nope",
])
def test_bad_grant_bodies_are_400(world, grants):
    check_error(world["admin"].post(f"{C}/{world['granted']}/grants", {"grants": grants}), 400,
                "bad_request")


def test_grant_to_another_organizations_member_is_400(world):
    r = world["admin"].post(f"{C}/{world['granted']}/grants", {"grants": [
        {"grantee": {"memberId": world["other"].member_id}, "permission": "usage"}]})
    check_error(r, 400, "bad_request")


def test_delete_grant_revokes_access(server, world):
    admin = world["admin"]
    c = admin.create(conn_body())["connectionId"]
    member = server.new_member_client(admin.organization_id, "creator")
    assert admin.post(f"{C}/{c}/grants", {"grants": [
        {"grantee": {"memberId": member.member_id}, "permission": "usage"}]}).status_code == 200
    assert member.get(f"{C}/{c}").status_code == 200
    grant = admin.get(f"{C}/{c}/grants").json()["entries"][0]
    r = admin.delete(f"{C}/{c}/grants/{grant['grantId']}")
    assert r.status_code == 200 and r.json() == {}
    schemas().validate("deleteConnectionGrant", 200, r.json())
    check_error(member.get(f"{C}/{c}"), 403, "forbidden")
    check_error(admin.delete(f"{C}/{c}/grants/{grant['grantId']}"), 404, "not_found")


def test_grants_page_like_connections(server, world):
    admin = world["admin"]
    c = admin.create(conn_body())["connectionId"]
    members = [server.new_member_client(admin.organization_id, "viewer") for _ in range(5)]
    r = admin.post(f"{C}/{c}/grants", {"grants": [
        {"grantee": {"memberId": m.member_id}, "permission": "usage"} for m in members]})
    assert r.status_code == 200
    seen, page = [], None
    while True:
        params = {"limit": 2} | ({"page": page} if page else {})
        body = admin.get(f"{C}/{c}/grants", params=params).json()
        assert body["total"] == 5
        seen += [g["grantId"] for g in body["entries"]]
        if not body["hasMore"]:
            break
        page = body["nextPage"]
    assert len(seen) == 5 == len(set(seen))
    check_error(admin.get(f"{C}/{c}/grants", params={"page": "forged.token"}), 400)


# ---- tokens ------------------------------------------------------------------------------

def token_request(server, **form):
    return requests.post(server.url("/v2/auth/token"), data=form, timeout=30)


def test_refresh_rotates_and_reuse_revokes_the_family(server):
    api = server.new_org_admin()
    first = api.fetch_token()
    r = token_request(server, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    schemas().validate("postToken", 200, second)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    auth = {"Authorization": f"Bearer {second['access_token']}"}
    assert requests.get(server.url(C), headers=auth, timeout=30).status_code == 200

    reuse = token_request(server, grant_type="refresh_token", refresh_token=first["refresh_token"])
    body = reuse.json()
    assert reuse.status_code == 400 and body["error"] == "invalid_grant", reuse.text
    # Every token descended from the reused one is gone.
    r = requests.get(server.url(C), headers=auth, timeout=30)
    assert r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    r = token_request(server, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_refresh_checks_client_credentials_when_given(server):
    api = server.new_org_admin()
    other = server.new_org_admin()
    pair = api.fetch_token()
    r = token_request(server, grant_type="refresh_token", refresh_token=pair["refresh_token"],
                      client_id=other.client_id, client_secret=other.client_secret)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = token_request(server, grant_type="refresh_token", refresh_token=pair["refresh_token"],
                      client_id=api.client_id, client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token_request(server, grant_type="refresh_token", refresh_token=pair["refresh_token"],
                      client_id=api.client_id, client_secret=api.client_secret)
    assert r.status_code == 200, r.text
    missing = token_request(server, grant_type="refresh_token")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_revoked_client_is_refused_at_once(server):
    api = server.new_org_admin()
    assert api.get(C).status_code == 200
    pair = api.fetch_token()
    out = server.cli_json("client", "revoke", "--client", api.client_id)
    assert out["clientId"] == api.client_id
    r = requests.get(server.url(C), headers={"Authorization": f"Bearer {api.token}"}, timeout=30)
    check_error(r, 401, "unauthorized")
    r = token_request(server, grant_type="client_credentials", client_id=api.client_id,
                      client_secret=api.client_secret)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token_request(server, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = server.cli("client", "revoke", "--client", "no-such-client", check=False)
    assert r.returncode == 1 and r.stderr.strip()


# ---- sample connections ------------------------------------------------------------------

def test_sample_connections_are_read_only(server, world):
    admin = world["admin"]
    sample = server.cli_json("sample", "add", "--org", admin.organization_id)
    assert sample["isSample"] is True
    cid = sample["connectionId"]
    got = admin.get_conn(cid)
    assert got["isSample"] is True
    for method in ("PUT", "PATCH", "DELETE"):
        body = None if method == "DELETE" else conn_body()
        check_error(admin.request(method, f"{C}/{cid}", json_body=body), 403, "forbidden")
    assert admin.get_conn(cid)["version"] == got["version"]
    # Visible by the same rules: a member without a grant may not read it.
    check_error(world["nogrant"].get(f"{C}/{cid}"), 403, "forbidden")


# ---- rate limiting and CORS --------------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after():
    srv = start_server("--rate-limit", "5")
    try:
        api = srv.api()
        statuses = []
        with requests.Session() as s:
            headers = {"Authorization": f"Bearer {api.token}"}
            for _ in range(20):
                statuses.append(s.get(srv.url(C), headers=headers, timeout=30))
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert sum(r.status_code == 200 for r in statuses) >= 5
        check_error(limited[0], 429, "too_many_requests")
        assert int(limited[0].headers["Retry-After"]) >= 1
        # Another client has its own bucket.
        other = srv.new_org_admin()
        assert other.get(C).status_code == 200
        time.sleep(1.2)
        assert requests.get(srv.url(C), headers=headers, timeout=30).status_code == 200
    finally:
        stop_and_check(srv)


def test_cors_preflight_and_simple_requests():
    origin = "https://app.example.com"
    srv = start_server("--cors-origins", f"{origin}, https://other.example.com")
    try:
        r = requests.options(srv.url(C), timeout=30, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204, r.text
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
        denied = requests.options(srv.url(C), timeout=30, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in denied.headers
        api = srv.api()
        r = requests.get(srv.url(C), timeout=30, headers={
            "Origin": origin, "Authorization": f"Bearer {api.token}"})
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == origin
        assert "ETag" in r.headers.get("Access-Control-Expose-Headers", "")
        r = requests.get(srv.url(C), timeout=30, headers={"Origin": "https://evil.example",
                                                          "Authorization": f"Bearer {api.token}"})
        assert "Access-Control-Allow-Origin" not in r.headers
    finally:
        stop_and_check(srv)
