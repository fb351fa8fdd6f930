"""The API's routes: mounted at /api/v1/ and, as an alias, /api/ (voicecrm/urls.py)."""

from django.urls import path
from rest_framework import routers

from voicecrm.api.agents import AGENT_KNOWLEDGE_PREFIX, AgentKnowledgeViewSet, AgentViewSet, SharedKnowledgeViewSet
from voicecrm.api.analytics import AnalyticsViewSet
from voicecrm.api.auth import TokenLoginView, TokenLogoutAllView, TokenLogoutView, TokenRefreshView
from voicecrm.api.calls import CallViewSet
from voicecrm.api.customers import AppointmentViewSet, CustomerViewSet, OrderViewSet, ServiceViewSet
from voicecrm.api.information import InformationViewSet
from voicecrm.api.routes import RouteViewSet
from voicecrm.api.tickets import TicketViewSet
from voicecrm.api.webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = routers.DefaultRouter()
router.register("customers", CustomerViewSet)
router.register("services", ServiceViewSet)
router.register("appointments", AppointmentViewSet)
router.register("orders", OrderViewSet)
router.register("calls", CallViewSet)
router.register("tickets", TicketViewSet)
router.register("routes", RouteViewSet)
router.register("webhooks", WebhookEndpointViewSet)
router.register("webhook-deliveries", WebhookDeliveryViewSet)
router.register("information", InformationViewSet)
router.register("analytics", AnalyticsViewSet, basename="analytics")
router.register("agents", AgentViewSet)
router.register(AGENT_KNOWLEDGE_PREFIX, AgentKnowledgeViewSet, basename="agent-knowledge")
router.register("knowledge/shared", SharedKnowledgeViewSet, basename="shared-knowledge")

urlpatterns = [
    path("auth/login/", TokenLoginView.as_view(), name="api-login"),
    path("auth/refresh/", TokenRefreshView.as_view(), name="api-refresh"),
    path("auth/logout/", TokenLogoutView.as_view(), name="api-logout"),
    path("auth/logoutall/", TokenLogoutAllView.as_view(), name="api-logout-all"),
    *router.urls,
]
