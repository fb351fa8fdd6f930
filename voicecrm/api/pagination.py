"""Pages of every list: `?page=` and a client page size, `?page_size=`, up to a maximum."""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page-number pages (`count`, `next`, `previous`, `results`), with a page size the client
    chooses up to MAX_PAGE_SIZE.

    Strict where DRF is lenient: a page or page size that is not a whole number of at least 1 is a
    400 naming the parameter (DRF answers "abc" with the default size, and a page of "abc" with a
    404). A page size above the maximum is read as the maximum, as DRF does, so a client asking
    for "as many as possible" gets them. A page past the last is a 404, as in DRF.
    """

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        value = request.query_params.get(self.page_size_query_param, "")
        if value == "":
            return self.page_size
        return min(_whole_number(self.page_size_query_param, value), self.max_page_size)

    def get_page_number(self, request, paginator) -> int | str:
        value = request.query_params.get(self.page_query_param, "")
        if value == "":
            return 1
        if value in self.last_page_strings:
            return paginator.num_pages
        return _whole_number(self.page_query_param, value)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {"name": self.page_query_param, "required": False, "in": "query",
             "description": "A page number (1 is the first); a page past the last is a 404.",
             "schema": {"type": "integer", "minimum": 1}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Results per page: {self.page_size} unless given; at most {self.max_page_size}.",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]


def _whole_number(name: str, value: str) -> int:
    # isdigit() alone accepts "²"; int() alone accepts " 5", "+5" and "1_000".
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValidationError({name: ["A whole number, 1 or more."]})
    return int(value)
