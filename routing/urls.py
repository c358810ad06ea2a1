"""Routes of the forward-auth endpoint (under /api/v2/)."""
from django.urls import path

from . import views

urlpatterns = [
    path("auth/session-proxy", views.SessionProxyView.as_view(), name="auth-session-proxy"),
]
