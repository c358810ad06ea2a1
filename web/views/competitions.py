"""Competitions and datasets pages: list, detail with rendered description and rules, data
files, the submit form with line-numbered validation errors, my submissions (live until
scored) and the leaderboard with a best-score-over-time chart."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, UnreadablePostError
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from competitions import selectors as comp_selectors
from competitions import services as comp_services
from competitions.models import Board, Competition, SubmissionStatus
from competitions.uploads import install_upload_cap, upload_cap_exceeded
from medforge.api.problems import Problem

from ..charts import step_chart
from ..forms import SubmissionForm
from ..pages import member_page, page, problem_text

LEADERBOARD_PAGE_SIZE = 50
# Far past any real board (one row per user), and keeps OFFSET within what the database takes.
LEADERBOARD_MAX_PAGE = 10**9
PENDING = (SubmissionStatus.QUEUED, SubmissionStatus.SCORING)


def _competition(request, slug: str) -> Competition:
    """The competition on this surface; another surface's competition is a 404."""
    try:
        return comp_selectors.competition_detail(user=request.user, exposure=request.exposure,
                                                 slug=slug)
    except Problem:
        raise Http404("No such competition") from None


def _rules(request, competition: Competition) -> dict:
    return {
        "metric": competition.metric,
        "direction": "higher is better" if competition.higher_is_better else "lower is better",
        "daily_cap": competition.daily_cap,
        "remaining_today": comp_selectors.remaining_today(user=request.user,
                                                          competition=competition),
    }


@member_page
@require_GET
def competition_list(request):
    rows = comp_selectors.competitions_for(user=request.user, exposure=request.exposure)
    return page(request, "web/competitions.html", {"competitions": rows})


@member_page
@require_GET
def competition_detail(request, slug):
    competition = _competition(request, slug)
    return page(request, "web/competition_detail.html", {
        "competition": competition,
        "rules": _rules(request, competition),
        "files": comp_selectors.dataset_files(dataset=competition.dataset),
        "top": comp_selectors.leaderboard(competition=competition, board=Board.PUBLIC,
                                          offset=0, limit=5),
    })


@csrf_exempt  # CSRF is checked by _submission_form, after the upload cap is in place
@require_http_methods(["GET", "POST"])
def submission_new(request, slug):
    # The capped handler must be installed before anything parses the body (CSRF would).
    if request.method == "POST":
        install_upload_cap(request)
        try:
            request.POST  # noqa: B018  (parse the body now, stopping at the cap)
        except UnreadablePostError:
            pass  # csrf_protect refuses the request below
        if upload_cap_exceeded(request):
            return _submission_too_large(request, slug)
    return _submission_form(request, slug)


@member_page
def _submission_too_large(request, slug):
    """413 with the form. No CSRF check: a body over the cap is not read, its token included
    (a browser would get a CSRF failure instead of this answer), and a refusal changes nothing."""
    competition = _competition(request, slug)
    form = SubmissionForm(request.POST, {})
    form.is_valid()  # binds cleaned_data; the file's own "required" error is replaced below
    form.errors.pop("file", None)
    cap_mib = settings.SUBMISSION_UPLOAD_MAX_BYTES / (1024 * 1024)
    form.add_error("file", f"The file is larger than the {cap_mib:g} MiB limit; it was not "
                           "accepted and does not count against today's cap.")
    return _submit_page(request, competition, form, [], 413)


@member_page
@csrf_protect
def _submission_form(request, slug):
    competition = _competition(request, slug)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    problems: list[dict] = []
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                submission = comp_services.submission_create(
                    user=request.user, competition=competition,
                    upload=form.cleaned_data["file"],
                    description=form.cleaned_data["description"])
            except Problem as problem:
                status = problem.status
                if problem.code == "submission_invalid" and problem.errors:
                    problems = problem.errors
                    total = problem.extra.get("total_problems") or len(problems)
                    form.add_error("file", f"The file has {total} problem{'s' if total != 1 else ''}"
                                           " (listed below by line); it was not accepted and "
                                           "does not count against today's cap.")
                else:
                    form.add_error("file" if problem.code == "submission_too_large" else None,
                                   problem_text(problem))
            else:
                messages.success(request, f"Submission #{submission.pk} is accepted and queued "
                                          "for scoring.")
                return redirect("web:competitions-submissions", slug=competition.slug)
        else:
            status = 422
    return _submit_page(request, competition, form, problems, status)


def _submit_page(request, competition, form, problems, status):
    return page(request, "web/submit.html", {
        "competition": competition, "form": form, "problems": problems,
        "rules": _rules(request, competition)}, status=status)


def _my_submissions_context(request, competition):
    rows = list(comp_selectors.submissions_for(user=request.user, competition=competition)[:100])
    return {"competition": competition, "submissions": rows,
            "pending": any(s.status in PENDING for s in rows)}


@member_page
@require_GET
def my_submissions(request, slug):
    competition = _competition(request, slug)
    ctx = _my_submissions_context(request, competition)
    ctx["rules"] = _rules(request, competition)
    return page(request, "web/my_submissions.html", ctx)


@member_page
@require_GET
def my_submissions_live(request, slug):
    competition = _competition(request, slug)
    response = page(request, "web/_submissions_table.html",
                    _my_submissions_context(request, competition))
    response["Cache-Control"] = "no-store"
    return response


@member_page
@require_GET
def leaderboard_page(request, slug):
    competition = _competition(request, slug)
    try:
        board = comp_selectors.check_board(competition=competition, user=request.user,
                                           board=request.GET.get("board", Board.PUBLIC))
    except Problem as problem:
        messages.info(request, problem.detail)
        board = Board.PUBLIC
    try:
        page_no = min(max(1, int(request.GET.get("page", "1"))), LEADERBOARD_MAX_PAGE)
    except ValueError:
        page_no = 1
    offset = (page_no - 1) * LEADERBOARD_PAGE_SIZE
    rows = list(comp_selectors.leaderboard(competition=competition, board=board, offset=offset,
                                           limit=LEADERBOARD_PAGE_SIZE + 1))
    has_next = len(rows) > LEADERBOARD_PAGE_SIZE
    rows = rows[:LEADERBOARD_PAGE_SIZE]
    history = comp_selectors.score_history(competition=competition, board=board)
    points = [(p.at, p.score) for p in history]
    return page(request, "web/leaderboard.html", {
        "competition": competition, "rows": rows, "board": board,
        "private_visible": competition.private_board_visible_to(request.user),
        "page_no": page_no, "has_next": has_next, "history": history,
        "chart": step_chart(points, title=f"Best {competition.metric} over time",
                            until=timezone.now()),
    })


@member_page
@require_GET
def dataset_list(request):
    datasets = comp_selectors.datasets_for(user=request.user, exposure=request.exposure)
    return page(request, "web/datasets.html", {
        "datasets": Paginator(datasets, 50).get_page(request.GET.get("page"))})


@member_page
@require_GET
def dataset_detail(request, slug):
    try:
        dataset = comp_selectors.dataset_detail(user=request.user, exposure=request.exposure,
                                                slug=slug)
    except Problem:
        raise Http404("No such dataset") from None
    return page(request, "web/dataset_detail.html", {
        "dataset": dataset,
        "files": comp_selectors.dataset_files(dataset=dataset),
        "competitions": dataset.competitions.filter(is_active=True, exposure=request.exposure),
    })
