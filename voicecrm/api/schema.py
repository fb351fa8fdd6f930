"""The OpenAPI schema's view of the API: /api/v1/ only (/api/ serves the same views as an alias),
and the same schema whatever database generated it."""


def only_v1(endpoints: list, **kwargs) -> list:
    """drf-spectacular preprocessing hook: drop the /api/ alias, so each operation appears once."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]


# Integer bounds that are only the database's column sizes (DRF adds them from the connection):
# SQLite and PostgreSQL differ, and they are no rule of the API.
_STORAGE_BOUNDS = {-(2**63), 2**63 - 1, -(2**31), 2**31 - 1, -(2**15), 2**15 - 1}


def without_storage_bounds(result: dict, **kwargs) -> dict:
    """drf-spectacular postprocessing hook: drop column-size bounds from integer properties."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") != "integer":
                continue
            for bound in ("minimum", "maximum"):
                if prop.get(bound) in _STORAGE_BOUNDS:
                    del prop[bound]
            if prop.get("format") == "int64":
                del prop["format"]
    return result
