"""Accounts API: sign-up, login, logout, /me, personal tokens, admin user management."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from medforge.api.pagination import keyset_page, paginated_response
from medforge.api.permissions import IsAdmin
from medforge.api.problems import Problem
from medforge.api.schema import paginated

from . import selectors, services
from .models import ApiToken, AuditLog, User
from .serializers import (
    AdminUserSerializer,
    AdminUserUpdateInput,
    AuditLogSerializer,
    LoginInput,
    MeUpdateInput,
    SignupInput,
    TokenCreateInput,
    TokenSerializer,
    TokenWithSecretSerializer,
    UserSerializer,
)


class SignupView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=SignupInput, responses={201: UserSerializer}, tags=["auth"])
    def post(self, request):
        data = SignupInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(request=request._request, **data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=LoginInput, responses={200: UserSerializer}, tags=["auth"])
    def post(self, request):
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_login(request=request._request, **data.validated_data)
        return Response(UserSerializer(user).data)


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={200: inline_serializer(
        "LogoutResult", {"logged_out": serializers.BooleanField()})}, tags=["auth"])
    def post(self, request):
        services.user_logout(request=request._request)
        return Response({"logged_out": True})


class MeView(APIView):
    @extend_schema(responses={200: UserSerializer}, tags=["account"])
    def get(self, request):
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=MeUpdateInput, responses={200: UserSerializer}, tags=["account"])
    def patch(self, request):
        data = MeUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update(request=request._request, user=request.user,
                                    data=data.validated_data)
        return Response(UserSerializer(user).data)


class TokenListView(APIView):
    @extend_schema(responses={200: paginated(TokenSerializer)}, tags=["account"])
    def get(self, request):
        rows, limit, cursor = keyset_page(
            request, selectors.user_tokens(user=request.user), ordering=("-created_at", "-id"))
        return paginated_response(request, TokenSerializer(rows, many=True).data, limit=limit,
                                  next_cursor=cursor)

    @extend_schema(request=TokenCreateInput, responses={201: TokenWithSecretSerializer},
                   tags=["account"])
    def post(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.token_create(user=request.user, request=request._request,
                                              **data.validated_data)
        return Response(TokenWithSecretSerializer(token, context={"secret": secret}).data,
                        status=status.HTTP_201_CREATED)


def _own_token(request, token_id) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id, user=request.user).first()
    if token is None:
        raise Problem("token_not_found", "No such token of yours.")
    return token


class TokenDetailView(APIView):
    @extend_schema(responses={200: TokenSerializer}, tags=["account"])
    def get(self, request, token_id):
        return Response(TokenSerializer(_own_token(request, token_id)).data)

    @extend_schema(responses={200: TokenSerializer}, tags=["account"],
                   description="Revoke the token; it stops working at once.")
    def delete(self, request, token_id):
        token = services.token_revoke(token=_own_token(request, token_id), by=request.user,
                                      request=request._request)
        return Response(TokenSerializer(token).data)


class TokenRotateView(APIView):
    @extend_schema(request=None, responses={201: TokenWithSecretSerializer}, tags=["account"])
    def post(self, request, token_id):
        new, secret = services.token_rotate(token=_own_token(request, token_id),
                                            by=request.user, request=request._request)
        return Response(TokenWithSecretSerializer(new, context={"secret": secret}).data,
                        status=status.HTTP_201_CREATED)


class AdminUserListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: paginated(AdminUserSerializer)}, tags=["admin"])
    def get(self, request):
        is_staff = request.query_params.get("is_admin")
        if is_staff not in (None, "true", "false"):
            raise Problem("invalid_filter", "is_admin must be true or false.")
        qs = selectors.users_for_admin(
            query=request.query_params.get("q"),
            is_staff=None if is_staff is None else is_staff == "true")
        rows, limit, cursor = keyset_page(request, qs, ordering=("id",))
        counts = selectors.active_session_counts([u.pk for u in rows])
        data = AdminUserSerializer(rows, many=True, context={"active_counts": counts}).data
        return paginated_response(request, data, limit=limit, next_cursor=cursor)


class AdminUserDetailView(APIView):
    permission_classes = [IsAdmin]

    def _user(self, user_id) -> User:
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise Problem("user_not_found", f"No user {user_id}.")
        return user

    @extend_schema(responses={200: AdminUserSerializer}, tags=["admin"])
    def get(self, request, user_id: int):
        user = self._user(user_id)
        counts = selectors.active_session_counts([user.pk])
        return Response(AdminUserSerializer(user, context={"active_counts": counts}).data)

    @extend_schema(request=AdminUserUpdateInput, responses={200: AdminUserSerializer},
                   tags=["admin"])
    def patch(self, request, user_id: int):
        data = AdminUserUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "is_admin" in changes:
            changes["is_staff"] = changes.pop("is_admin")
        user = services.admin_user_update(actor=request.user, user=self._user(user_id),
                                          data=changes, request=request._request)
        counts = selectors.active_session_counts([user.pk])
        return Response(AdminUserSerializer(user, context={"active_counts": counts}).data)


class AdminAuditLogView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: paginated(AuditLogSerializer)}, tags=["admin"])
    def get(self, request):
        qs = AuditLog.objects.select_related("actor")
        if action := request.query_params.get("action"):
            qs = qs.filter(action=action)
        rows, limit, cursor = keyset_page(request, qs, ordering=("-id",))
        return paginated_response(request, AuditLogSerializer(rows, many=True).data,
                                  limit=limit, next_cursor=cursor)
