"""Routes of the server-rendered web UI (included at the site root). URL names start with
the navigation section they belong to, which the layout uses to mark the current tab."""
from django.urls import path

from .views import accounts, competitions, dashboard, sessions, staff, status

app_name = "web"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("signup/", accounts.signup, name="signup"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("account/", accounts.account, name="account"),
    path("account/tokens/", accounts.tokens, name="tokens"),
    path("account/tokens/<uuid:token_id>/revoke", accounts.token_revoke, name="tokens-revoke"),
    path("account/tokens/<uuid:token_id>/rotate", accounts.token_rotate, name="tokens-rotate"),
    path("sessions/", sessions.session_list, name="sessions"),
    path("sessions/start", sessions.session_start, name="sessions-start"),
    path("sessions/<uuid:session_id>/", sessions.session_detail, name="sessions-detail"),
    path("sessions/<uuid:session_id>/live", sessions.session_live, name="sessions-live"),
    path("sessions/<uuid:session_id>/stop", sessions.session_stop, name="sessions-stop"),
    path("snapshots/<uuid:snapshot_id>/restore", sessions.snapshot_restore,
         name="sessions-restore"),
    path("competitions/", competitions.competition_list, name="competitions"),
    path("competitions/<slug:slug>/", competitions.competition_detail,
         name="competitions-detail"),
    path("competitions/<slug:slug>/submit", competitions.submission_new,
         name="competitions-submit"),
    path("competitions/<slug:slug>/submissions/", competitions.my_submissions,
         name="competitions-submissions"),
    path("competitions/<slug:slug>/submissions/live", competitions.my_submissions_live,
         name="competitions-submissions-live"),
    path("competitions/<slug:slug>/leaderboard/", competitions.leaderboard_page,
         name="competitions-leaderboard"),
    path("datasets/", competitions.dataset_list, name="datasets"),
    path("datasets/<slug:slug>/", competitions.dataset_detail, name="datasets-detail"),
    path("status/", status.status_page, name="status"),
    path("staff/", staff.staff_home, name="staff"),
    path("staff/users/", staff.staff_users, name="staff-users"),
    path("staff/users/<int:user_id>", staff.staff_user_update, name="staff-user-update"),
    path("staff/sessions/", staff.staff_sessions, name="staff-sessions"),
    path("staff/sessions/<uuid:session_id>/stop", staff.staff_session_stop,
         name="staff-sessions-stop"),
    path("staff/gpus/", staff.staff_gpus, name="staff-gpus"),
    path("staff/gpus/<int:gpu_id>", staff.staff_gpu_toggle, name="staff-gpus-toggle"),
]
