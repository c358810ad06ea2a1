"""Test helpers shared by every app: envelope/problem assertions and validation of real
responses against the served OpenAPI schema."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jsonschema


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.content[:500])
    assert resp["Content-Type"].startswith("application/problem+json"), resp["Content-Type"]
    body = resp.json()
    assert body["code"] == code, body
    assert body["status"] == status
    for key in ("type", "title", "detail", "instance", "request_id"):
        assert key in body, (key, body)
    assert body["request_id"] == resp["X-Request-Id"]
    text = resp.content.decode()
    assert "Traceback" not in text and "<html" not in text.lower()
    return body


def assert_envelope(resp, status: int = 200) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.content[:500])
    body = resp.json()
    assert set(body) == {"data", "meta"}, body
    meta = body["meta"]
    assert meta["api_version"] == "v2"
    assert meta["request_id"] == resp["X-Request-Id"]
    for key in ("timestamp", "limit", "next_cursor", "has_more"):
        assert key in meta
    return body["data"]


def _convert(node: Any, components: dict, depth: int = 0) -> Any:
    """OpenAPI 3.0 schema → plain JSON Schema (refs inlined, `nullable` expanded)."""
    if depth > 40:
        return {}
    if isinstance(node, list):
        return [_convert(n, components, depth + 1) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _convert(components[name], components, depth + 1)
    out = {k: _convert(v, components, depth + 1) for k, v in node.items()
           if k not in ("nullable", "readOnly", "writeOnly", "example", "x-enveloped")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


class SchemaValidator:
    def __init__(self, schema: dict) -> None:
        self.schema = schema
        self.components = schema.get("components", {}).get("schemas", {})
        # Literal segments win over parameters (`/sessions/current` before `/sessions/{id}`).
        self._routes = sorted(
            ((re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", p) + "$"), p)
             for p in schema["paths"]),
            key=lambda route: route[1].count("{"),
        )

    def template_for(self, path: str) -> str:
        for rx, template in self._routes:
            if rx.match(path):
                return template
        raise AssertionError(f"{path} is not documented in the OpenAPI schema")

    def validate(self, method: str, path: str, resp) -> None:
        template = self.template_for(path.split("?")[0])
        op = self.schema["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template} is not documented"
        status = str(resp.status_code)
        assert status in op["responses"], (
            f"{method} {template} answered {status}, which the schema does not document"
        )
        content = op["responses"][status].get("content", {})
        ctype = resp["Content-Type"].split(";")[0]
        assert ctype in content, f"{method} {template} {status}: {ctype} not in {list(content)}"
        json_schema = _convert(content[ctype]["schema"], self.components)
        jsonschema.validate(resp.json(), json_schema)


@lru_cache(maxsize=1)
def _schema_cached(version: int) -> dict:
    from django.test import Client

    resp = Client().get("/api/v2/schema/", {"format": "json"})
    assert resp.status_code == 200
    import json

    return json.loads(resp.content)


def schema_validator() -> SchemaValidator:
    return SchemaValidator(_schema_cached(1))
