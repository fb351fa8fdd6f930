from csp.constants import SELF as CSP_SELF
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from telephony.browser import views as widget_views
from voicecrm import views

admin.site.site_header = "VoiceCRM"
admin.site.site_title = "VoiceCRM"
admin.site.index_title = "Supervisor console"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard"), name="home"),
    path("healthz", views.healthz, name="healthz"),  # readiness, as /healthz/ready
    path("healthz/live", views.healthz_live, name="healthz-live"),
    path("healthz/ready", views.healthz, name="healthz-ready"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/panels/", views.dashboard_panels, name="dashboard-panels"),
    path("widget/demo/", widget_views.widget_demo, name="widget-demo"),
    path("admin/", admin.site.urls),
    # The API's schema and its two readers (assets served locally; Swagger's script is a file, for the CSP).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Redoc parses the schema in a web worker it makes from a blob: URL.
    path("api/redoc/", csp_update({"worker-src": [CSP_SELF, "blob:"]})(SpectacularRedocView.as_view(url_name="api-schema")),
         name="api-redoc"),
    path("api/v1/", include("voicecrm.api.urls")),
    path("api/", include(("voicecrm.api.urls", "api"), namespace="api-alias")),  # the same views, unversioned
    path("agents/", include("agents.urls")),
    path("calls/", include("calls.urls")),
    path("telephony/twilio/", include("telephony.twilio.urls")),
]

# Under /api/, errors no view answered are JSON too (DEBUG off); elsewhere Django's pages.
handler400 = "voicecrm.api.errors.bad_request"
handler404 = "voicecrm.api.errors.page_not_found"
handler500 = "voicecrm.api.errors.server_error"

# No route serves MEDIA_ROOT: recordings go through calls.views.call_recording, which checks permissions.
