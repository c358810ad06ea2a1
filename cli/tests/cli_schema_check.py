"""Checks the CLI's declared reads (medforge_cli.api_fields) against an OpenAPI document."""
from __future__ import annotations

from medforge_cli.api_fields import FIELDS, OPERATIONS, Operation


class Schema:
    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def resolve(self, node: dict) -> dict:
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = self.doc["components"]["schemas"][name]
            seen += 1
            assert seen < 50, "reference loop"
        return node

    def alternatives(self, node: dict) -> list[dict]:
        """A schema's concrete object shapes (through $ref, allOf, oneOf, anyOf)."""
        node = self.resolve(node)
        for key in ("allOf", "oneOf", "anyOf"):
            if key in node:
                out = []
                for part in node[key]:
                    out.extend(self.alternatives(part))
                if key == "allOf" and out:
                    merged = {"type": "object", "properties": {}}
                    for part in out:
                        merged["properties"].update(part.get("properties", {}))
                        if "items" in part:
                            merged["items"] = part["items"]
                            merged["type"] = part.get("type", "array")
                    return [merged]
                return out
        return [node]

    def has_path(self, node: dict, path: str) -> bool:
        head, _, rest = path.partition(".")
        many = head.endswith("[]")
        name = head[:-2] if many else head
        for shape in self.alternatives(node):
            prop = shape.get("properties", {}).get(name)
            if prop is None:
                continue
            if many:
                arrays = [a for a in self.alternatives(prop) if a.get("type") == "array" or "items" in a]
                if not arrays:
                    continue
                target = arrays[0]["items"]
            else:
                target = prop
            if not rest or self.has_path(target, rest):
                return True
        return False

    def operation(self, op: Operation) -> dict:
        paths = self.doc["paths"]
        assert op.path in paths, f"{op.method} {op.path} is not in the schema"
        operation = paths[op.path].get(op.method.lower())
        assert operation is not None, f"{op.method} {op.path} is not in the schema"
        return operation

    def data_schemas(self, op: Operation) -> list[dict]:
        """The `data` schema of each 2xx JSON response of the operation."""
        out = []
        for status, response in self.operation(op).get("responses", {}).items():
            if not status.startswith("2"):
                continue
            content = response.get("content", {}).get("application/json")
            if content is None:
                continue
            for shape in self.alternatives(content["schema"]):
                data = shape.get("properties", {}).get("data")
                assert data is not None, f"{op.method} {op.path} {status}: no envelope"
                out.append(data)
        return out


def problems(doc: dict) -> list[str]:
    """Every declared read the schema does not offer (empty: all good)."""
    schema = Schema(doc)
    missing: list[str] = []
    for op in OPERATIONS:
        try:
            schema.operation(op)
        except AssertionError as exc:
            missing.append(str(exc))
            continue
        if op.kind is None:
            continue
        datas = schema.data_schemas(op)
        if not datas:
            missing.append(f"{op.method} {op.path}: no 2xx JSON response")
            continue
        targets = []
        for data in datas:
            if op.many:
                targets += [a["items"] for a in schema.alternatives(data) if "items" in a]
            else:
                targets.append(data)
        for field in FIELDS[op.kind]:
            paths = [f"{root}.{field}" if root else field for root in op.roots]
            if not any(schema.has_path(t, p) for t in targets for p in paths):
                roots = " or ".join(f"data.{r}" if r else "data" for r in op.roots)
                missing.append(f"{op.method} {op.path}: {roots} has no `{field}` ({op.kind})")
    components = doc["components"]["schemas"]
    for field in FIELDS["problem"]:
        if not schema.has_path({"$ref": "#/components/schemas/Problem"}, field):
            missing.append(f"Problem has no `{field}`")
    for field in FIELDS["meta"]:
        for name in ("Meta", "ListMeta"):
            if name in components and not schema.has_path({"$ref": f"#/components/schemas/{name}"}, field):
                missing.append(f"{name} has no `{field}`")
    return missing
