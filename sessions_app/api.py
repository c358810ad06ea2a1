"""Sessions API under /api/v2/{external,internal}/: sessions, their events, snapshots, packs;
and /api/v2/admin/sessions for operators. Thin views: parse, call one service or selector,
render."""
from __future__ import annotations

import json
import time

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from medforge.api.pagination import keyset_page, paginated_response
from medforge.api.permissions import IsAdmin
from medforge.api.problems import Problem
from medforge.api.renderers import EnvelopeJSONRenderer
from medforge.api.schema import paginated
from medforge.core.exposure import may_use

from . import selectors, services
from .models import TERMINAL_STATUSES, Exposure, Session, SessionEvent, SessionStatus
from .serializers import (
    AdminSessionSerializer,
    CurrentSessionSerializer,
    PackSerializer,
    SessionCreateInput,
    SessionEventSerializer,
    SessionSerializer,
    SnapshotRestoreInput,
    SnapshotSerializer,
    StopResultSerializer,
)

TAGS = ["sessions"]
SURFACE_403 = OpenApiResponse(description="internal_access_required (internal surface)")
NOT_FOUND = OpenApiResponse(description="session_not_found")
CREATE_PROBLEMS = {
    403: SURFACE_403,
    404: OpenApiResponse(description="pack_not_found"),
    409: OpenApiResponse(description="concurrent_session_limit, no_gpus_available, "
                                     "pack_deprecated"),
    422: OpenApiResponse(description="validation_error, pack_exposure_mismatch"),
    503: OpenApiResponse(description="maintenance: new sessions are paused"),
}
STATUS_PARAM = OpenApiParameter("status", str, enum=list(SessionStatus.values),
                                description="Only sessions in this state.")


def _surface(request, exposure: str) -> None:
    """The internal surface is for entitled users (and admins) only."""
    if not may_use(request.user, exposure):
        raise Problem("internal_access_required",
                      "The internal surface needs the internal entitlement.")


def _status_filter(request) -> str | None:
    value = request.query_params.get("status")
    if value in (None, ""):
        return None
    if value not in SessionStatus.values:
        raise Problem("invalid_filter", f"status must be one of {', '.join(SessionStatus.values)}.",
                      errors=[{"field": "status", "message": "Unknown status.", "code": "invalid"}])
    return value


def _session_or_404(request, exposure: str, session_id):
    session = selectors.session_visible(user=request.user, exposure=exposure,
                                        session_id=session_id)
    if session is None:
        raise Problem("session_not_found", "No such session on this surface.")
    return session


class CurrentSessionView(APIView):
    @extend_schema(responses={200: CurrentSessionSerializer}, tags=TAGS,
                   summary="Your newest active session on this surface, or null")
    def get(self, request, exposure):
        _surface(request, exposure)
        session = selectors.session_current(user=request.user, exposure=exposure)
        return Response({"session": SessionSerializer(session).data if session else None})


class SessionListView(APIView):
    @extend_schema(parameters=[STATUS_PARAM], responses={200: paginated(SessionSerializer)},
                   tags=TAGS, operation_id="sessions_list", summary="Your sessions on this surface, newest first")
    def get(self, request, exposure):
        _surface(request, exposure)
        qs = selectors.sessions_for_user(user=request.user, exposure=exposure,
                                         status=_status_filter(request))
        rows, limit, cursor = keyset_page(request, qs, ordering=("-created_at", "-id"))
        return paginated_response(request, SessionSerializer(rows, many=True).data,
                                  limit=limit, next_cursor=cursor)

    @extend_schema(request=SessionCreateInput,
                   responses={201: SessionSerializer, **CREATE_PROBLEMS}, tags=TAGS,
                   summary="Start a session (allocates a GPU; answers at once in `starting`)")
    def post(self, request, exposure):
        _surface(request, exposure)
        data = SessionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(user=request.user, exposure=exposure,
                                          pack=data.validated_data.get("pack_id"))
        session = selectors.session_visible(user=request.user, exposure=exposure,
                                            session_id=session.pk)
        return Response(SessionSerializer(session).data, status=http.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionSerializer}, tags=TAGS, operation_id="sessions_detail")
    def get(self, request, exposure, session_id):
        _surface(request, exposure)
        return Response(SessionSerializer(_session_or_404(request, exposure, session_id)).data)


class SessionStopView(APIView):
    @extend_schema(request=None, responses={202: StopResultSerializer}, tags=TAGS,
                   summary="Ask the session to stop (the container work happens in the background)")
    def post(self, request, exposure, session_id):
        _surface(request, exposure)
        session = _session_or_404(request, exposure, session_id)
        session, message = services.session_request_stop(session=session, by=request.user)
        session = selectors.session_visible(user=request.user, exposure=exposure,
                                            session_id=session.pk)
        return Response({"session": SessionSerializer(session).data, "message": message},
                        status=http.HTTP_202_ACCEPTED)


class SessionEventsView(APIView):
    @extend_schema(responses={200: paginated(SessionEventSerializer)}, tags=TAGS,
                   summary="The session's lifecycle events, oldest first (poll with the cursor)")
    def get(self, request, exposure, session_id):
        _surface(request, exposure)
        session = _session_or_404(request, exposure, session_id)
        rows, limit, cursor = keyset_page(request, selectors.session_events(session=session),
                                          ordering=("id",), default_limit=100)
        return paginated_response(request, SessionEventSerializer(rows, many=True).data,
                                  limit=limit, next_cursor=cursor)


def _sse(event_id: int | None, kind: str, payload: str) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {payload}\n\n".encode()


def _event_stream(session_id, after_id: int, *, max_seconds: float, poll_seconds: float):
    """Yield the session's events after `after_id` as server-sent events until the session is
    terminal (then an `end` event) or `max_seconds` pass (the client reconnects with
    Last-Event-ID and misses nothing)."""
    deadline = time.monotonic() + max_seconds
    last_beat = time.monotonic()
    yield b"retry: 2000\n\n"
    while True:
        rows = list(SessionEvent.objects.filter(session_id=session_id, id__gt=after_id)
                    .order_by("id")[:200])
        for row in rows:
            after_id = row.id
            payload = json.dumps(SessionEventSerializer(row).data, cls=DjangoJSONEncoder)
            yield _sse(row.id, "session_event", payload)
        if not rows:
            status = Session.objects.filter(pk=session_id).values_list("status", flat=True).first()
            if status is None or status in TERMINAL_STATUSES:
                yield _sse(None, "end", json.dumps({"status": status}))
                return
            if time.monotonic() >= deadline:
                return
            if time.monotonic() - last_beat > 15:
                last_beat = time.monotonic()
                yield b": keep-alive\n\n"
            time.sleep(poll_seconds)


class _EventStreamRenderer(EnvelopeJSONRenderer):
    """Lets `Accept: text/event-stream` (what EventSource sends) through content negotiation;
    errors still leave as problem+json, the stream itself is a StreamingHttpResponse."""

    media_type = "text/event-stream"
    format = "sse"


class SessionEventStreamView(APIView):
    renderer_classes = [EnvelopeJSONRenderer, _EventStreamRenderer]
    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiResponse(
            description="Server-sent events: one `session_event` per lifecycle event (its id "
                        "is the SSE id, so `Last-Event-ID` resumes), then `end` once the "
                        "session is terminal.")},
        tags=TAGS, summary="The session's lifecycle events as a server-sent event stream")
    def get(self, request, exposure, session_id):
        _surface(request, exposure)
        session = _session_or_404(request, exposure, session_id)
        raw = request.META.get("HTTP_LAST_EVENT_ID") or request.query_params.get("after") or "0"
        try:
            after_id = max(0, int(raw))
        except ValueError:
            raise Problem("invalid_cursor", "Last-Event-ID must be an event id.") from None
        resp = StreamingHttpResponse(
            _event_stream(session.pk, after_id,
                          max_seconds=settings.SESSION_EVENTS_STREAM_SECONDS,
                          poll_seconds=settings.SESSION_EVENTS_STREAM_POLL_SECONDS),
            content_type="text/event-stream")
        resp["Cache-Control"] = "no-store"
        resp["X-Accel-Buffering"] = "no"
        return resp


class SnapshotListView(APIView):
    @extend_schema(responses={200: paginated(SnapshotSerializer)}, tags=TAGS,
                   summary="Your workspace snapshots of sessions on this surface")
    def get(self, request, exposure):
        _surface(request, exposure)
        qs = selectors.snapshots_for_user(user=request.user, exposure=exposure)
        rows, limit, cursor = keyset_page(request, qs, ordering=("-created_at", "-id"))
        return paginated_response(request, SnapshotSerializer(rows, many=True).data,
                                  limit=limit, next_cursor=cursor)


class SnapshotRestoreView(APIView):
    @extend_schema(request=SnapshotRestoreInput,
                   responses={201: SessionSerializer, **CREATE_PROBLEMS}, tags=TAGS,
                   summary="Start a new session whose workspace is restored from the snapshot")
    def post(self, request, exposure, snapshot_id):
        _surface(request, exposure)
        SnapshotRestoreInput(data=request.data or {}).is_valid(raise_exception=True)
        snapshot = selectors.snapshot_visible(user=request.user, snapshot_id=snapshot_id,
                                              exposure=exposure)
        if snapshot is None:
            raise Problem("snapshot_not_found", "No such snapshot on this surface.")
        session = services.session_restore(snapshot=snapshot, by=request.user, exposure=exposure)
        session = selectors.session_visible(user=request.user, exposure=exposure,
                                            session_id=session.pk)
        return Response(SessionSerializer(session).data, status=http.HTTP_201_CREATED)


class PackListView(APIView):
    @extend_schema(responses={200: PackSerializer(many=True)}, tags=TAGS,
                   summary="Packs (IDE images) offered on this surface")
    def get(self, request, exposure):
        _surface(request, exposure)
        return Response(PackSerializer(selectors.packs_offered(exposure=exposure), many=True).data)


class AdminSessionListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[STATUS_PARAM,
                    OpenApiParameter("exposure", str, enum=list(Exposure.values)),
                    OpenApiParameter("user", int, description="Owner's user id"),
                    OpenApiParameter("gpu", int, description="GPU index")],
        responses={200: paginated(AdminSessionSerializer)}, tags=["admin"],
        summary="All sessions, with filters")
    def get(self, request):
        params = request.query_params
        exposure = params.get("exposure") or None
        if exposure is not None and exposure not in Exposure.values:
            raise Problem("invalid_filter", "exposure must be external or internal.")
        ints = {}
        for name in ("user", "gpu"):
            raw = params.get(name)
            if raw not in (None, ""):
                if not (raw.isascii() and raw.isdigit()):
                    raise Problem("invalid_filter", f"{name} must be an integer.")
                ints[name] = int(raw)
        qs = selectors.sessions_for_admin(status=_status_filter(request), exposure=exposure,
                                          user_id=ints.get("user"), gpu_index=ints.get("gpu"))
        rows, limit, cursor = keyset_page(request, qs, ordering=("-created_at", "-id"))
        return paginated_response(request, AdminSessionSerializer(rows, many=True).data,
                                  limit=limit, next_cursor=cursor)
