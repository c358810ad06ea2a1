"""Sign-up, login, logout, account settings and personal API tokens, on the accounts
services (the same rules as the API: throttles, password validators, audit)."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from medforge.accounts import selectors as account_selectors
from medforge.accounts import services as account_services
from medforge.accounts.models import ApiToken
from medforge.api.problems import Problem
from medforge.core.hosts import parse_session_host

from ..forms import (
    LoginForm,
    PasswordChangeForm,
    ProfileForm,
    SignupForm,
    TokenCreateForm,
)
from ..pages import apply_problem, member_page, page


def _next_url(request, default: str = "/") -> str:
    """Where to go after signing in: this host, or a session host of this platform (the edge
    sends a browser that opened an IDE link without a valid sign-in here with it as `next`)."""
    target = request.POST.get("next") or request.GET.get("next") or default
    allowed = {request.get_host()}
    netloc = urlsplit(target).netloc
    if netloc and parse_session_host(netloc) is not None:
        allowed.add(netloc)
    if url_has_allowed_host_and_scheme(target, allowed_hosts=allowed,
                                       require_https=request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("web:dashboard")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                account_services.user_signup(
                    request=request, email=data["email"], password=data["password"],
                    handle=data["handle"], display_name=data["display_name"])
            except Problem as problem:
                apply_problem(request, problem, form)
                status = problem.status
            else:
                messages.success(request, f"Welcome to MedForge, {data['handle']}!")
                return redirect("web:dashboard")
        else:
            status = 422
    return page(request, "web/signup.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def login_view(request):
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                account_services.user_login(request=request, email=form.cleaned_data["email"],
                                            password=form.cleaned_data["password"])
            except Problem as problem:
                form.add_error(None, problem.detail)
                status = problem.status
            else:
                return redirect(_next_url(request))
        else:
            status = 422
    return page(request, "web/login.html", {"form": form, "next": _next_url(request, "")},
                status=status)


@require_POST
def logout_view(request):
    account_services.user_logout(request=request)
    messages.info(request, "You are signed out.")
    return redirect("web:login")


@member_page
@require_http_methods(["GET", "POST"])
def account(request):
    user = request.user
    profile = ProfileForm(initial={"email": user.email, "handle": user.handle,
                                   "display_name": user.display_name}, prefix="profile")
    password = PasswordChangeForm(prefix="pw")
    status = 200
    if request.method == "POST" and request.POST.get("form") == "profile":
        profile = ProfileForm(request.POST, prefix="profile")
        if profile.is_valid():
            try:
                account_services.user_update(request=request, user=user,
                                             data=profile.cleaned_data)
            except Problem as problem:
                apply_problem(request, problem, profile)
                status = problem.status
            else:
                messages.success(request, "Your profile is saved.")
                return redirect("web:account")
        else:
            status = 422
    elif request.method == "POST" and request.POST.get("form") == "password":
        password = PasswordChangeForm(request.POST, prefix="pw")
        if password.is_valid():
            try:
                account_services.user_update(request=request, user=user, data={
                    "password": password.cleaned_data["password"],
                    "current_password": password.cleaned_data["current_password"]})
            except Problem as problem:
                apply_problem(request, problem, password)
                status = problem.status
            else:
                messages.success(request, "Your password is changed. Other signed-in browsers "
                                          "and IDE tabs must sign in again.")
                return redirect("web:account")
        else:
            status = 422
    elif request.method == "POST":
        status = 400
    return page(request, "web/account.html", {"profile": profile, "password": password},
                status=status)


def _expiry(choice: str):
    return timezone.now() + timedelta(days=int(choice)) if choice else None


@member_page
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = TokenCreateForm(request.POST or None)
    status = 200
    new_secret = None
    new_token = None
    if request.method == "POST":
        if form.is_valid():
            try:
                new_token, new_secret = account_services.token_create(
                    user=request.user, name=form.cleaned_data["name"],
                    expires_at=_expiry(form.cleaned_data["expires_in"]), request=request)
            except Problem as problem:
                apply_problem(request, problem, form)
                status = problem.status
            else:
                form = TokenCreateForm()
                status = 201
        else:
            status = 422
    return _tokens_page(request, form, new_token, new_secret, status)


def _tokens_page(request, form, new_token, new_secret, status=200):
    rows = list(account_selectors.user_tokens(user=request.user))
    response = page(request, "web/tokens.html", {
        "form": form, "tokens": rows, "new_token": new_token, "new_secret": new_secret,
        "now": timezone.now()}, status=status)
    if new_secret:
        # The one page that holds a secret must not be kept by any cache or the back button.
        response["Cache-Control"] = "no-store"
    return response


def _own_token(request, token_id) -> ApiToken | None:
    return ApiToken.objects.filter(pk=token_id, user=request.user).first()


@member_page
@require_POST
def token_revoke(request, token_id):
    token = _own_token(request, token_id)
    if token is None:
        messages.error(request, "No such token of yours.")
    else:
        account_services.token_revoke(token=token, by=request.user, request=request)
        messages.success(request, f"Token “{token.name}” is revoked; it stops working now.")
    return redirect("web:tokens")


@member_page
@require_POST
def token_rotate(request, token_id):
    token = _own_token(request, token_id)
    if token is None:
        messages.error(request, "No such token of yours.")
        return redirect("web:tokens")
    try:
        new, secret = account_services.token_rotate(token=token, by=request.user, request=request)
    except Problem as problem:
        messages.error(request, problem.detail)
        return redirect("web:tokens")
    return _tokens_page(request, TokenCreateForm(), new, secret, status=201)
