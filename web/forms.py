"""Django forms for the web UI. They check shape only; every rule that matters (unique
email/handle, password validators, caps, CSV validity) is the service's, surfaced through
`pages.apply_problem`."""
from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from medforge.accounts.models import HANDLE_RE, MAX_SESSIONS_CEILING

HANDLE_HELP = "3–30 lowercase letters, digits, “-” or “_”. Shown on leaderboards."
HANDLE_ERROR = ("Use 3–30 lowercase letters, digits, “-” or “_”, starting and ending with a "
                "letter or digit.")


class HandleField(forms.CharField):
    """A handle, lowercased before it is checked (people type “Ada”, the handle is “ada”)."""

    default_validators = (RegexValidator(HANDLE_RE, HANDLE_ERROR),)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 30)
        kwargs.setdefault("help_text", HANDLE_HELP)
        super().__init__(**kwargs)

    def to_python(self, value):
        return super().to_python(value).lower()


class _NewPasswordForm(forms.Form):
    """A form whose ``password`` must be typed twice (``password_again``)."""

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password_again") and \
                data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords differ.")
        return data


class SignupForm(_NewPasswordForm):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True}))
    handle = HandleField(
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}))
    display_name = forms.CharField(max_length=80, required=False, label="Display name")
    password = forms.CharField(
        max_length=256, strip=False,
        help_text="At least 8 characters; not a common password, not all digits.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        max_length=256, strip=False, label="Password (again)",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class LoginForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(max_length=256, strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}))


class ProfileForm(forms.Form):
    email = forms.EmailField(max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    handle = HandleField()
    display_name = forms.CharField(max_length=80, required=False, label="Display name")


class PasswordChangeForm(_NewPasswordForm):
    current_password = forms.CharField(
        max_length=256, strip=False, label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    password = forms.CharField(
        max_length=256, strip=False, label="New password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        max_length=256, strip=False, label="New password (again)",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"),
                  ("365", "In a year")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What it is for, e.g. “laptop CLI”.")
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")


class SessionStartForm(forms.Form):
    """The pack choice; choices are the packs offered on the page's surface."""
    pack = forms.ChoiceField(label="Environment (pack)")

    def __init__(self, *args, packs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.packs = {str(p.pk): p for p in packs}
        self.fields["pack"].choices = [(str(p.pk), p.name + (" (default)" if p.is_default else ""))
                                       for p in packs]
        default = next((p for p in packs if p.is_default), None)
        if default is not None:
            self.fields["pack"].initial = str(default.pk)

    def clean_pack(self):
        return self.packs[self.cleaned_data["pack"]]


class SubmissionForm(forms.Form):
    file = forms.FileField(label="Predictions (CSV)",
                           help_text="UTF-8 CSV with the header shown in the rules.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))
    description = forms.CharField(max_length=500, required=False,
                                  label="Description",
                                  widget=forms.TextInput(attrs={"placeholder": "what changed"}))


class AdminUserForm(forms.Form):
    is_staff = forms.BooleanField(required=False, label="Administrator")
    can_use_internal = forms.BooleanField(required=False, label="Internal access")
    max_concurrent_sessions = forms.IntegerField(min_value=1, max_value=MAX_SESSIONS_CEILING,
                                                 label="Session limit")


class GpuToggleForm(forms.Form):
    enabled = forms.TypedChoiceField(choices=[("1", "enable"), ("0", "disable")],
                                     coerce=lambda v: v == "1")
    reason = forms.CharField(max_length=200, required=False)
