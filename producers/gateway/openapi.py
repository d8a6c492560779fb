"""The gateway's OpenAPI 3.1 document, generated from the contract's own JSON Schemas.

Every event type and version is a component schema, ``fupin.contract.event_schema`` as it is
(draft-07, self-contained) less ``$schema``/``$id``: the keywords it uses mean the same in JSON
Schema 2020-12, the dialect of OpenAPI 3.1. So the document cannot drift from ``schemas/``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from fupin import contract
from fupin.config import Settings

_DROP = frozenset({"$schema", "$id"})


def _dialect_2020(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _dialect_2020(v) for k, v in node.items() if k not in _DROP}
    if isinstance(node, list):
        return [_dialect_2020(v) for v in node]
    return node


def valid_examples(event_type: str, version: int) -> list[dict[str, Any]]:
    """The contract's own valid examples of a type and version (``examples/<version>/valid-*.json``)."""
    department, name = event_type.split(".", 1)
    folder = contract.SCHEMAS_DIR / department / name / "examples" / str(version)
    return [orjson.loads(p.read_bytes()) for p in sorted(folder.glob("valid-*.json"))]


def component_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before resending", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_BEARER = {"WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}}


@cache
def _document(max_events: int, max_bytes: int) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    refs = []
    for event_type, versions in contract.EVENT_TYPES.items():
        for version in versions:
            name = component_name(event_type, version)
            schemas[name] = _dialect_2020(contract.event_schema(event_type, version))
            if examples := valid_examples(event_type, version):
                schemas[name]["examples"] = examples
            refs.append({"$ref": f"#/components/schemas/{name}"})
    schemas["Event"] = {
        "description": "A contract envelope (events.md): one of the event types at one of its versions.",
        "oneOf": refs,
    }
    schemas["Verdict"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["event_id", "verdict"],
        "properties": {
            "event_id": {"type": ["string", "null"], "description": "null when the event has no readable id"},
            "verdict": {"enum": ["accepted", "duplicate", "rejected"]},
            "reason": {"type": "string", "description": "why it was rejected (the one validity judgement)"},
        },
    }
    schemas["Result"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["request_id", "accepted", "duplicate", "rejected", "events"],
        "properties": {
            "request_id": {"type": "integer", "description": "names the request in its dead letters"},
            "accepted": {"type": "integer", "minimum": 0},
            "duplicate": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Verdict"},
                       "description": "one verdict per event, in the order sent"},
        },
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    }
    schemas["SchemaIndex"] = {
        "type": "object",
        "required": ["event_types"],
        "properties": {
            "event_types": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["event_type", "versions"],
                    "properties": {
                        "event_type": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    },
                },
            }
        },
    }
    batch = {"type": "array", "minItems": 1, "maxItems": max_events, "items": {"$ref": "#/components/schemas/Event"}}
    event_types = sorted(contract.EVENT_TYPES)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fupin gateway",
            "version": "1",
            "description": (
                "Contract envelopes over HTTP for departments without a Kafka client. Envelopes must be "
                "pseudonymized at the department's side: raw resident IDs and phone numbers are rejected. "
                f"A request holds at most {max_events} events and {max_bytes} bytes."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token of role department:<name>"}},
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "publishEvents",
                    "summary": "Publish one event or a batch",
                    "description": (
                        "Answered after the broker acknowledged every accepted event: `accepted` and "
                        "`duplicate` are on the topic. A request without an answer may be resent: "
                        "the event_id makes it idempotent. A rejected event is also a dead letter."
                    ),
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/Event"}, batch]}},
                            "application/x-ndjson": {"schema": batch,
                                                     "description": "one event per line"},
                        },
                    },
                    "responses": {
                        "200": {"description": "Processed: one verdict per event, in order",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
                        "400": _error("Malformed request: the body cannot be read as events"),
                        "401": _error("No token, or an unknown one", _BEARER),
                        "403": _error("The token's role may not publish"),
                        "413": _error("Past the size limit (events or bytes)"),
                        "415": _error("Unsupported Content-Type"),
                        "429": _error("The broker is behind: resend later", _RETRY_AFTER),
                        "503": _error("Delivery failed: resend the request", _RETRY_AFTER),
                    },
                }
            },
            "/v1/schemas": {
                "get": {
                    "operationId": "listSchemas",
                    "summary": "The event types and their versions",
                    "responses": {"200": {"description": "The contract's event types",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SchemaIndex"}}}}},
                }
            },
            "/v1/schemas/{event_type}/{version}": {
                "get": {
                    "operationId": "getSchema",
                    "summary": "The JSON Schema of one event type at one version (the whole event)",
                    "parameters": [
                        {"name": "event_type", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": event_types}},
                        {"name": "version", "in": "path", "required": True,
                         "schema": {"type": "integer", "minimum": 1}},
                    ],
                    "responses": {
                        "200": {"description": "A JSON Schema (draft-07, self-contained)",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "404": _error("No such event type or version"),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the gateway runs, and how much awaits the broker",
                    "responses": {"200": {"description": "Running", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"const": "ok"}, "in_flight": {"type": "integer"},
                                       "remembered": {"type": "integer"}}}}}}},
                }
            },
        },
    }


def document(settings: Settings) -> dict[str, Any]:
    return _document(settings.gateway_max_events, settings.gateway_max_bytes)
