"""URL map: the API under /api/v2 (one Django app serves every platform host), operations
endpoints, django-admin and the web UI."""
from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from medforge.api.converters import ExposureConverter
from status import views as ops_views

register_converter(ExposureConverter, "exposure")

api_v2 = [
    path("", include("medforge.accounts.urls")),
    path("", include("sessions_app.urls")),
    path("", include("competitions.urls")),
    path("", include("routing.urls")),
    path("", include("status.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("api/ready", ops_views.ready, name="ready"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("api/v2/", include(api_v2)),
    path("admin/", admin.site.urls),
    path("", include("web.urls")),
]

admin.site.site_header = "MedForge operations"
admin.site.site_title = "MedForge admin"
