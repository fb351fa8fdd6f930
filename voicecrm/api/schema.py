"""The OpenAPI schema's view of the API: /api/v1/ only (/api/ serves the same views as an alias),
and the same schema whatever database generated it."""


def only_v1(endpoints: list, **kwargs) -> list:
    """drf-spectacular preprocessing hook: drop the /api/ alias, so each operation appears once."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]


# Integer bounds that are only the database's column sizes (DRF adds them from the connection):
# SQLite and PostgreSQL differ, and they are no rule of the API.
_STORAGE_BOUNDS = {-(2**63), 2**63 - 1, -(2**31), 2**31 - 1, -(2**15), 2**15 - 1}


def without_storage_bounds(result: dict, **kwargs) -> dict:
    """drf-spectacular postprocessing hook: drop column-size bounds from integer schemas, at any
    depth (a nested serializer's fields are inline: opening hours' weekday)."""
    def visit(node):
        if isinstance(node, dict):
            # Also beside an allOf of an enum (a choice field), which has no type of its own.
            for bound in ("minimum", "maximum"):
                if node.get(bound) in _STORAGE_BOUNDS and not isinstance(node.get(bound), bool):
                    del node[bound]
            if node.get("type") == "integer" and node.get("format") == "int64":
                del node["format"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result.get("components", {}))
    return result


# DRF writes a TimeField as "09:00:00"; OpenAPI's `format: time` (RFC 3339's full-time) demands an
# offset ("09:00:00Z"), so a validating client would refuse every opening hour.
_LOCAL_TIME = {"type": "string", "pattern": r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
               "example": "09:00:00"}


def times_without_offset(result: dict, **kwargs) -> dict:
    """drf-spectacular postprocessing hook: a time of day is described as DRF writes and reads it."""
    def visit(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and node.get("format") == "time":
                del node["format"]
                for key, value in _LOCAL_TIME.items():
                    node.setdefault(key, value)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
