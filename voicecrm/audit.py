"""Who made a change, for the audit log (django-auditlog)."""

from auditlog.middleware import AuditlogMiddleware
from django.utils.functional import SimpleLazyObject


class AuditActorMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware, reading the user when a change is logged rather than when
    the request arrives: the REST API authenticates tokens inside the view (DRF sets the user on
    the request then), so the stock middleware would log API changes with no actor."""

    @staticmethod
    def _get_actor(request):
        return SimpleLazyObject(lambda: AuditlogMiddleware._get_actor(request))
