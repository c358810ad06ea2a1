from django.urls import path

from . import api

urlpatterns = [
    path("auth/signup", api.SignupView.as_view(), name="api-signup"),
    path("auth/login", api.LoginView.as_view(), name="api-login"),
    path("auth/logout", api.LogoutView.as_view(), name="api-logout"),
    path("me", api.MeView.as_view(), name="api-me"),
    path("me/tokens", api.TokenListView.as_view(), name="api-tokens"),
    path("me/tokens/<uuid:token_id>", api.TokenDetailView.as_view(), name="api-token"),
    path("me/tokens/<uuid:token_id>/rotate", api.TokenRotateView.as_view(),
         name="api-token-rotate"),
    path("admin/users", api.AdminUserListView.as_view(), name="api-admin-users"),
    path("admin/users/<int:user_id>", api.AdminUserDetailView.as_view(), name="api-admin-user"),
    path("admin/audit", api.AdminAuditLogView.as_view(), name="api-admin-audit"),
]
