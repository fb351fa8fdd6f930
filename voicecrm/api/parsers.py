"""Request body parsers for the REST API.

Named in REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"], which DRF resolves while rest_framework.views
is being imported, so this module must not import views, generics or viewsets.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested deeper than Python's recursion limit answered as a 400.

    json.load raises RecursionError (not ValueError) at about 1,000 levels, which DRF lets through
    as a 500; a few kilobytes of brackets are enough to send it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
