"""dbt artifacts (contract section 13): POST /v2/connections/{connectionId}/dbtArtifacts, a
multipart/form-data upload of a .tar.gz of a dbt project's target/ folder, against the real binary.

Who may (admin only, 404 across organizations, 409 archived), the 400s of malformed bodies and
archives (which leave nothing behind), the 413 past the route's own body limit, the 201 of a valid
upload, and the server's memory during a 64 MiB upload (the body streams through the archive
reader: contract section 13 keeps the RSS under 128 MiB).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid

import requests

from conftest import HTTP_TIMEOUT, check_error, conn_body, connect, schemas, SocketReader

C = "/v2/connections"

MANIFEST = {
    "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json",
                 "dbt_version": "1.7.4", "adapter_type": "postgres"},
    "nodes": {
        "model.shop.customers": {
            "database": "analytics", "schema": "public", "name": "customers",
            "resource_type": "model", "alias": "customers",
            "description": "One record per customer.",
            "columns": {"customer_id": {"name": "customer_id", "description": "Primary key."}},
        },
        "test.shop.not_null_customers_customer_id": {
            "database": "analytics", "schema": "public", "name": "not_null_customers_customer_id",
            "resource_type": "test", "description": "ignored", "columns": {},
        },
    },
    "sources": {},
    "macros": {"macro.shop.m": {"name": "m", "resource_type": "macro", "description": "ignored"}},
}
CATALOG = {
    "metadata": {"dbt_version": "1.7.4"},
    "nodes": {"model.shop.customers": {
        "metadata": {"type": "BASE TABLE", "database": "analytics", "schema": "public",
                     "name": "customers", "comment": None},
        "columns": {"name": {"type": "text", "index": 2, "name": "name",
                             "comment": "The customer's name."}}}},
    "sources": {},
}


def tar_gz(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tar.addfile(e)
            else:
                name, data = e
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def valid_archive() -> bytes:
    return tar_gz([("target/manifest.json", json.dumps(MANIFEST).encode()),
                   ("target/catalog.json", json.dumps(CATALOG).encode())])


def multipart(archive: bytes, field: str = "artifacts") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"target.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    body += archive + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(api, cid: str, archive: bytes, field: str = "artifacts", **kw) -> requests.Response:
    body, ctype = multipart(archive, field)
    return api.request("POST", f"{C}/{cid}/dbtArtifacts", data=body, content_type=ctype, **kw)


def raw_upload(api, cid: str, archive: bytes, timeout: float = 60) -> requests.Response:
    """An upload without the suite's every-response checks (which refuse a 5xx): for the cases
    whose answer depends on whether the catalog store has landed (store_applies_dbt_descriptions)."""
    body, ctype = multipart(archive)
    return requests.post(api.base_url + f"{C}/{cid}/dbtArtifacts", data=body, timeout=timeout,
                         headers={"Authorization": f"Bearer {api.token}", "Content-Type": ctype})


def store_applies_dbt_descriptions(server, resp: requests.Response) -> bool:
    """False while CatalogStore::ApplyDbtDescriptions is the placeholder of the catalog base
    (src/store/sql_catalog.cc answers kInternal "the catalog store is not built yet"): the upload
    was read and accepted, and only the store's write is missing. Once the store lands this is
    always True and the 201 assertions below run."""
    if resp.status_code != 500:
        return True
    rid = resp.headers.get("X-Request-Id")
    return server.wait_for_log(lambda ev: ev.get("requestId") == rid and
                               "not built yet" in str(ev.get("detail", "")), timeout=2) is None


def check_created(server, resp: requests.Response) -> None:
    if not store_applies_dbt_descriptions(server, resp):
        import pytest
        pytest.xfail("the catalog store's ApplyDbtDescriptions is still the placeholder")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body == {}
    schemas().validate("postConnectionDbtArtifacts", 201, body)


def test_valid_upload_is_201(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    check_created(server, raw_upload(api, cid, valid_archive()))


def test_only_admins_may_upload(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    creator = server.new_member_client(api.organization_id, "creator")
    check_error(upload(creator, cid, valid_archive()), 403, "forbidden")


def test_unknown_and_other_organizations_connections_are_404(api, other_api):
    check_error(upload(api, str(uuid.uuid4()), valid_archive()), 404, "not_found")
    theirs = other_api.create(conn_body("postgres"))["connectionId"]
    check_error(upload(api, theirs, valid_archive()), 404, "not_found")


def test_archived_connection_is_409(api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    assert api.delete(f"{C}/{cid}").status_code in (200, 204)
    check_error(upload(api, cid, valid_archive()), 409, "conflict")


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def test_bad_bodies_and_archives_are_400_and_leave_nothing_behind(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    escape = f"dbt-escape-{uuid.uuid4().hex}"
    manifest = ("manifest.json", json.dumps(MANIFEST).encode())
    whole = valid_archive()
    before = sorted(p.name for p in server.tmp.iterdir())
    cases = {
        "\"..\" component": tar_gz([manifest, (f"../{escape}", b"x")]),
        "absolute path": tar_gz([manifest, (f"/tmp/{escape}", b"x")]),
        "symbolic link": tar_gz([_symlink("target/manifest.json", "/etc/passwd")]),
        "hard link": tar_gz([manifest, _link_entry(escape)]),
        "truncated": whole[: len(whole) // 2],
        "not a .tar.gz": b"PK\x03\x04 this is a zip, not a tar.gz" * 10,
        "no manifest.json": tar_gz([("target/catalog.json", json.dumps(CATALOG).encode())]),
        "manifest.json is not valid JSON at byte": tar_gz([("manifest.json", b'{"nodes": [}')]),
    }
    for why, archive in cases.items():
        err = check_error(upload(api, cid, archive), 400, "bad_request")
        assert why in err["message"], (why, err)
    # The body itself: no field `artifacts`, not multipart at all, no Content-Type.
    err = check_error(upload(api, cid, whole, field="other"), 400, "bad_request")
    assert "no field \"artifacts\"" in err["message"], err
    check_error(api.request("POST", f"{C}/{cid}/dbtArtifacts", data=whole,
                            content_type="application/gzip"), 415)
    check_error(api.request("POST", f"{C}/{cid}/dbtArtifacts", data=whole, content_type=None), 400)
    # Nothing reached the disk: not next to the store, not where the names pointed.
    assert sorted(p.name for p in server.tmp.iterdir() if not p.name.startswith("connreg.db")) == \
        [n for n in before if not n.startswith("connreg.db")]
    assert not (server.tmp.parent / escape).exists() and not os.path.exists(f"/tmp/{escape}")
    # And the server still serves the same connection.
    assert api.get(f"{C}/{cid}").status_code == 200


def _link_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = "manifest.json"
    return info


def test_body_past_the_routes_limit_is_413(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    # A declared length past 64 MiB (plus the framing allowance) is refused from the header.
    sock = connect(server)
    try:
        head = (f"POST {C}/{cid}/dbtArtifacts HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {api.token}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {65 * 1024 * 1024}\r\n\r\n").encode()
        sock.sendall(head + b"--b\r\n")
        resp = SocketReader(sock, timeout=10).read_response()
    finally:
        sock.close()
    assert resp is not None and resp.status == 413, resp
    assert resp.json()["code"] == "payload_too_large"
    # Other routes keep section 10's 1 MiB.
    r = api.request("POST", f"{C}/{cid}/test", data=b"{" + b" " * (1024 * 1024 + 10) + b"}")
    check_error(r, 413, "payload_too_large")


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_64_mib_upload_streams_with_bounded_memory(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    # Incompressible filler: the archive is just under the 64 MiB compressed limit.
    archive = tar_gz([("target/manifest.json", json.dumps(MANIFEST).encode()),
                      ("target/run_results.bin", os.urandom(63 * 1024 * 1024 + 512 * 1024))])
    assert 63 * 2**20 < len(archive) <= 64 * 2**20, len(archive)
    pid = server.proc.pid
    before = _status_kib(pid, "VmHWM:")
    start = time.monotonic()
    resp = raw_upload(api, cid, archive, timeout=HTTP_TIMEOUT * 2)
    took = time.monotonic() - start
    peak = _status_kib(pid, "VmHWM:")
    print(f"\n[64 MiB upload] server VmHWM {before // 1024} MiB before, {peak // 1024} MiB after; "
          f"{len(archive) / 2**20:.1f} MiB in {took:.2f} s; status {resp.status_code}")
    check_created(server, resp)
    # Under AddressSanitizer (scripts/sanitize.sh exports ASAN_OPTIONS to the server) the RSS is
    # ASan's: its shadow memory, and a quarantine that keeps every freed block for a while, so
    # the sum of all the pieces streamed shows as resident. The bound is the Release build's,
    # held by the same test in the main run.
    if "ASAN_OPTIONS" not in os.environ:
        assert peak < 128 * 1024, f"the server's peak RSS reached {peak // 1024} MiB"


def test_chunked_upload_streams_and_past_the_limit_is_413(server, api):
    cid = api.create(conn_body("postgres"))["connectionId"]
    body, ctype = multipart(valid_archive())
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": ctype}
    url = api.base_url + f"{C}/{cid}/dbtArtifacts"

    def pieces(data: bytes, size: int = 1000):
        for i in range(0, len(data), size):
            yield data[i:i + size]

    # A valid gzip stream that goes on past the limit: no declared length to refuse it by, so it
    # is refused as the bytes arrive (by the archive reader at 64 MiB compressed, or by the server
    # at the route's limit, whichever counts first).
    big, big_type = multipart(tar_gz([("target/manifest.json", b"{}"),
                                      ("filler.bin", os.urandom(70 * 2**20))]))

    def count_413() -> int:
        return sum(1 for ev in server.log_events() if ev.get("status") == 413)

    before = count_413()
    try:
        r = requests.post(url, data=pieces(big, 256 * 1024),
                          headers={**headers, "Content-Type": big_type}, timeout=HTTP_TIMEOUT)
    except requests.ConnectionError:
        r = None  # the server may close before the client has sent everything
    if r is not None:
        check_error(r, 413, "payload_too_large")
    # The server logged the 413 either way, and serves on.
    deadline = time.monotonic() + 5
    while count_413() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count_413() == before + 1
    assert api.get(f"{C}/{cid}").status_code == 200
    # Chunked (requests sends a generator so) within the limit: as with a Content-Length.
    check_created(server, requests.post(url, data=pieces(body), headers=headers, timeout=HTTP_TIMEOUT))
