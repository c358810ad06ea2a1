"""OpenAPI post-processing: describe the envelope and the problem documents truthfully.

Views declare the schema of `data`; this hook wraps every 2xx JSON response in
`{data, meta}` (lists already come wrapped by the paginator's schema) and adds the problem
responses every endpoint can return.
"""
from __future__ import annotations

META = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "api_version": {"type": "string", "enum": ["v2"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "limit": {"type": "integer", "nullable": True},
        "next_cursor": {"type": "string", "nullable": True},
        "has_more": {"type": "boolean", "nullable": True},
    },
    "required": ["request_id", "api_version", "timestamp", "limit", "next_cursor", "has_more"],
}
PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "nullable": True},
        "code": {"type": "string"},
        "request_id": {"type": "string", "nullable": True},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                    "line": {"type": "integer"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code", "request_id"],
}
STANDARD_PROBLEMS = {
    "400": "Malformed request (bad JSON, invalid limit or cursor)",
    "405": "Method not allowed",
    "401": "Not authenticated",
    "403": "Forbidden (permission, origin)",
    "404": "Not found",
    "422": "Validation failed",
    "429": "Rate limited",
    "500": "Internal error",
}


def envelope_postprocessing_hook(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Meta"] = META
    components["Problem"] = PROBLEM
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                content = response.get("content", {})
                if status.startswith("2") and "application/json" in content:
                    schema = content["application/json"].get("schema", {})
                    if not schema.get("x-enveloped") and not schema.get("$ref", "").endswith("Page"):
                        content["application/json"]["schema"] = {
                            "type": "object",
                            "properties": {
                                "data": schema,
                                "meta": {"$ref": "#/components/schemas/Meta"},
                            },
                            "required": ["data", "meta"],
                        }
                    else:
                        schema.pop("x-enveloped", None)
                elif not status.startswith("2"):
                    response["content"] = {"application/problem+json": {"schema": problem_ref}}
            for status, description in STANDARD_PROBLEMS.items():
                responses.setdefault(
                    status,
                    {"description": description,
                     "content": {"application/problem+json": {"schema": problem_ref}}},
                )
    return result


def _list_meta_serializer():
    global _LIST_META
    if _LIST_META is None:
        from rest_framework import serializers

        class ListMetaSerializer(serializers.Serializer):
            request_id = serializers.CharField()
            api_version = serializers.CharField()
            timestamp = serializers.DateTimeField()
            limit = serializers.IntegerField(allow_null=True)
            next_cursor = serializers.CharField(allow_null=True)
            has_more = serializers.BooleanField(allow_null=True)

        _LIST_META = ListMetaSerializer
    return _LIST_META


_LIST_META = None
_PAGES: dict = {}


def paginated(serializer_class):
    """`@extend_schema(responses=paginated(SessionSerializer))` for a cursor-paginated list.

    The component is named `<Item>Page`, which tells the hook it is already enveloped.
    """
    from drf_spectacular.utils import inline_serializer

    base = serializer_class.__name__.removesuffix("Serializer")
    if base not in _PAGES:
        _PAGES[base] = inline_serializer(
            f"{base}Page",
            fields={"data": serializer_class(many=True), "meta": _list_meta_serializer()()},
        )
    return _PAGES[base]


def paginated_schema(item_schema: dict) -> dict:
    """Schema of a paginated list response (already enveloped)."""
    return {
        "type": "object",
        "x-enveloped": True,
        "properties": {
            "data": {"type": "array", "items": item_schema},
            "meta": {"$ref": "#/components/schemas/Meta"},
        },
        "required": ["data", "meta"],
    }


def _is_page(serializer) -> bool:
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return cls.__name__.endswith("Page")


try:
    from drf_spectacular.openapi import AutoSchema as _BaseAutoSchema
except ImportError:  # pragma: no cover
    _BaseAutoSchema = object


class MedforgeAutoSchema(_BaseAutoSchema):
    """Names paginated GET operations `*_list` (APIViews otherwise all read as `*_retrieve`)."""

    def get_operation_id(self):
        operation_id = super().get_operation_id()
        if self.method == "GET" and operation_id.endswith("_retrieve"):
            responses = self.get_response_serializers()
            if isinstance(responses, dict):
                responses = responses.get(200) or responses.get("200")
            if responses is not None and _is_page(responses):
                operation_id = operation_id[: -len("_retrieve")] + "_list"
        return operation_id
