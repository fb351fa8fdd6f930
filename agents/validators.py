"""Validation of the JSON a supervisor types into an AgentConfig."""

from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

# Field types the post-call extractor knows how to fill.
EXTRACTABLE_TYPES = {"string", "number", "integer", "boolean"}


def validate_extraction_schema(schema: Any) -> None:
    if schema in (None, {}):
        return
    if not isinstance(schema, dict):
        raise ValidationError("The extraction schema must be a JSON object.")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"Not a valid JSON Schema at {path}: {exc.message}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValidationError('The extraction schema must be {"type": "object", "properties": {...}}.')
    for name, field in schema["properties"].items():
        kind = field.get("type") if isinstance(field, dict) else None
        if kind not in EXTRACTABLE_TYPES and "enum" not in field:
            raise ValidationError(f"Field {name!r}: type must be one of {sorted(EXTRACTABLE_TYPES)} or an enum.")
    missing = [name for name in schema.get("required", []) if name not in schema["properties"]]
    if missing:
        raise ValidationError(f"Required fields not in properties: {', '.join(missing)}.")


def validate_string_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Must be a JSON list of names, e.g. [\"find_customer\", \"create_ticket\"].")


def validate_rule_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValidationError("Must be a JSON list of rule objects.")
    for number, rule in enumerate(value, start=1):
        if "action" not in rule:
            raise ValidationError(f"Rule {number} has no \"action\".")


def validate_object(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")
