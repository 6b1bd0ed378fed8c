"""Sigma's OpenAPI document ($CONNREG_SHARED/reference/sigma-openapi.json) as the suite reads it.

Contract "Sources", item 2: response bodies must validate against its schemas, and its `oneOf`s
are read as `anyOf`s. Sigma writes some unions as a `oneOf` of branches that overlap (every
path array matches three branches; "annotate" is in two permission enums), so no value of the
overlap could ever validate as a `oneOf`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Sigma's operations that connreg does not serve yet: none (every operation of the document is
# served; the set stays for the next ones Sigma adds).
NOT_YET_SERVED: frozenset[str] = frozenset()


def shared_dir() -> Path:
    env = os.environ.get("CONNREG_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def one_of_as_any_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): one_of_as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [one_of_as_any_of(v) for v in node]
    return node


def _read(name: str) -> dict:
    return json.loads((shared_dir() / "reference" / name).read_text())


def sigma_document(served_only: bool = False) -> dict:
    """The whole document, its oneOfs read as anyOfs, and every operation's `default` response
    Sigma's ApiError {message, code, requestId}: the document gives no error responses, the older
    subset of its Connections operations (sigma-openapi-connections.json) gives that one to each.
    With `served_only`, without the operations of NOT_YET_SERVED (each of which must be in it: a
    renamed operation fails loudly)."""
    doc = one_of_as_any_of(_read("sigma-openapi.json"))
    api_error = _read("sigma-openapi-connections.json")["components"]["responses"]["ApiError"]
    doc["components"].setdefault("responses", {})["ApiError"] = api_error
    for item in doc["paths"].values():
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                item[method]["responses"].setdefault("default", {"$ref": "#/components/responses/ApiError"})
    if served_only:
        dropped = set()
        for path in list(doc["paths"]):
            item = doc["paths"][path]
            for method in HTTP_METHODS:
                if isinstance(item.get(method), dict) and item[method].get("operationId") in NOT_YET_SERVED:
                    dropped.add(item.pop(method)["operationId"])
            if not any(m in item for m in HTTP_METHODS):
                del doc["paths"][path]
        assert dropped == NOT_YET_SERVED, f"not in Sigma's document: {sorted(NOT_YET_SERVED - dropped)}"
    return doc
