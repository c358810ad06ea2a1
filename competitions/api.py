"""Competitions API (per surface, under /api/v2/<external|internal>/) and the admin rescore.

Thin views: parse the request, call one selector or service, render with a serializer.
"""
from __future__ import annotations

import mimetypes

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from medforge.api.pagination import keyset_page, offset_page, paginated_response
from medforge.api.permissions import IsAdmin
from medforge.api.problems import Problem
from medforge.api.schema import paginated

from . import selectors, services
from .models import Board, Submission
from .serializers import (
    CompetitionDetailSerializer,
    CompetitionSerializer,
    DatasetFileSerializer,
    DatasetSerializer,
    HistoryPointSerializer,
    LeaderboardRowSerializer,
    SubmissionCreatedSerializer,
    SubmissionSerializer,
)
from .uploads import install_upload_cap, upload_cap_exceeded

TAGS = ["competitions"]


class CompetitionListView(APIView):
    @extend_schema(operation_id="competitions_list", responses={200: paginated(CompetitionSerializer)}, tags=TAGS)
    def get(self, request, exposure: str):
        qs = selectors.competitions_for(user=request.user, exposure=exposure)
        rows, limit, cursor = keyset_page(request, qs, ordering=("slug",))
        return paginated_response(request, CompetitionSerializer(rows, many=True).data, limit=limit,
                                  next_cursor=cursor)


class CompetitionDetailView(APIView):
    @extend_schema(responses={200: CompetitionDetailSerializer}, tags=TAGS)
    def get(self, request, exposure: str, slug: str):
        competition = selectors.competition_detail(user=request.user, exposure=exposure, slug=slug)
        competition.submission_formats = selectors.submission_formats(competition=competition)
        competition.has_private_board = selectors.has_private_board(competition=competition)
        competition.private_board_visible = competition.private_board_visible_to(request.user)
        competition.remaining_today = selectors.remaining_today(user=request.user, competition=competition)
        competition.max_upload_bytes = settings.SUBMISSION_UPLOAD_MAX_BYTES
        return Response(CompetitionDetailSerializer(competition).data)


class LeaderboardView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("board", str, enum=Board.values, description="public (default) or private")],
        responses={200: paginated(LeaderboardRowSerializer)}, tags=TAGS,
    )
    def get(self, request, exposure: str, slug: str):
        competition = selectors.competition_detail(user=request.user, exposure=exposure, slug=slug)
        board = selectors.check_board(competition=competition, board=request.query_params.get("board", "public"),
                                      user=request.user)
        rows, limit, _, cursor = offset_page(
            request,
            lambda offset, count: selectors.leaderboard(competition=competition, board=board, offset=offset,
                                                        limit=count),
            scope=f"leaderboard:{competition.pk}:{board}",
        )
        return paginated_response(request, LeaderboardRowSerializer(rows, many=True).data, limit=limit,
                                  next_cursor=cursor)


class ScoreHistoryView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("board", str, enum=Board.values)],
        responses={200: HistoryPointSerializer(many=True)}, tags=TAGS,
    )
    def get(self, request, exposure: str, slug: str):
        competition = selectors.competition_detail(user=request.user, exposure=exposure, slug=slug)
        board = selectors.check_board(competition=competition, board=request.query_params.get("board", "public"),
                                      user=request.user)
        points = selectors.score_history(competition=competition, board=board)
        return Response(HistoryPointSerializer(points, many=True).data)


_UPLOAD_REQUEST = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the submission CSV (UTF-8)"},
            "description": {"type": "string", "maxLength": services.DESCRIPTION_MAX},
        },
        "required": ["file"],
    }
}


class SubmissionCreateView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request=_UPLOAD_REQUEST,
        responses={201: SubmissionCreatedSerializer,
                   413: OpenApiResponse(description="submission_too_large"),
                   429: OpenApiResponse(description="submission_cap_reached (Retry-After)"),
                   503: OpenApiResponse(description="scoring_unavailable")},
        tags=TAGS,
    )
    def post(self, request, exposure: str, slug: str):
        # Before anything reads the body: stream it to disk and stop at the cap.
        install_upload_cap(request._request)
        competition = selectors.competition_detail(user=request.user, exposure=exposure, slug=slug)
        files, data = request.FILES, request.data
        if upload_cap_exceeded(request._request):
            raise services.too_large_problem(settings.SUBMISSION_UPLOAD_MAX_BYTES)
        unknown = sorted(set(data.keys()) - {"file", "description"})
        if unknown:
            raise Problem("validation_error", f"Unknown field(s): {', '.join(unknown)}.",
                          errors=[{"field": n, "message": "Unknown field.", "code": "unknown_field"} for n in unknown])
        if len(files.getlist("file")) > 1:
            raise Problem("validation_error", "Send exactly one file.",
                          errors=[{"field": "file", "message": "Send exactly one file.", "code": "multiple_files"}])
        submission = services.submission_create(
            user=request.user, competition=competition, upload=files.get("file"),
            description=data.get("description", ""),
        )
        body = SubmissionCreatedSerializer(submission, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class MySubmissionsView(APIView):
    @extend_schema(responses={200: paginated(SubmissionSerializer)}, tags=TAGS)
    def get(self, request, exposure: str, slug: str):
        competition = selectors.competition_detail(user=request.user, exposure=exposure, slug=slug)
        qs = selectors.submissions_for(user=request.user, competition=competition)
        rows, limit, cursor = keyset_page(request, qs, ordering=("-created_at", "-id"))
        return paginated_response(request, SubmissionSerializer(rows, many=True, context={"request": request}).data,
                                  limit=limit, next_cursor=cursor)


class DatasetListView(APIView):
    @extend_schema(operation_id="datasets_list", responses={200: paginated(DatasetSerializer)}, tags=TAGS)
    def get(self, request, exposure: str):
        qs = selectors.datasets_for(user=request.user, exposure=exposure).prefetch_related("competitions")
        rows, limit, cursor = keyset_page(request, qs, ordering=("slug",))
        return paginated_response(request, DatasetSerializer(rows, many=True).data, limit=limit, next_cursor=cursor)


class DatasetDetailView(APIView):
    @extend_schema(responses={200: DatasetSerializer}, tags=TAGS)
    def get(self, request, exposure: str, slug: str):
        dataset = selectors.dataset_detail(user=request.user, exposure=exposure, slug=slug)
        return Response(DatasetSerializer(dataset).data)


class DatasetFilesView(APIView):
    @extend_schema(operation_id="datasets_files_list", responses={200: paginated(DatasetFileSerializer)},
                   tags=TAGS)
    def get(self, request, exposure: str, slug: str):
        dataset = selectors.dataset_detail(user=request.user, exposure=exposure, slug=slug)
        files = selectors.dataset_files(dataset=dataset)
        rows, limit, _, cursor = offset_page(
            request, lambda offset, count: files[offset:offset + count], scope=f"files:{dataset.pk}")
        items = [
            {"name": f.name, "area": f.area, "size": f.size, "modified": f.modified,
             "url": reverse("api-dataset-file", kwargs={"exposure": exposure, "slug": slug, "name": f.name})}
            for f in rows
        ]
        return paginated_response(request, DatasetFileSerializer(items, many=True).data, limit=limit,
                                  next_cursor=cursor)


class DatasetFileDownloadView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, tags=TAGS)
    def get(self, request, exposure: str, slug: str, name: str):
        dataset = selectors.dataset_detail(user=request.user, exposure=exposure, slug=slug)
        path = selectors.dataset_file_path(dataset=dataset, name=name)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=path.name,  # noqa: SIM115
                                content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        return response


class AdminSubmissionScoreView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        responses={202: inline_serializer("RescoreResult", {
            "submission": SubmissionSerializer(), "queued": serializers.BooleanField()})},
        tags=["admin"],
    )
    def post(self, request, submission_id: int):
        sub = Submission.objects.select_related("competition").filter(pk=submission_id).first()
        if sub is None:
            raise Problem("submission_not_found", f"There is no submission {submission_id}.")
        sub = services.submission_rescore(submission=sub, by=request.user, request=request._request)
        body = {"submission": SubmissionSerializer(sub, context={"request": request}).data, "queued": True}
        return Response(body, status=status.HTTP_202_ACCEPTED)
