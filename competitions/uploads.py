"""Streaming upload with a size cap, for submission files.

Django streams multipart files to a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE) but puts no
limit on their size. ``install_upload_cap(request)`` — call it before the body is parsed —
refuses a request whose Content-Length is over the cap without reading it, and stops writing
as soon as a file crosses the cap; ``upload_cap_exceeded(request)`` then says so, and the view
answers 413 ``submission_too_large``. The web UI's submit view uses the same two calls.
"""
from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

# Room for the multipart envelope and the description field around the file itself.
MULTIPART_SLACK_BYTES = 64 * 1024


class CappedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.SUBMISSION_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        self.exceeded = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes + MULTIPART_SLACK_BYTES:
            self.exceeded = True
            # "Handled", with no fields and no files: nothing of the body is read.
            return QueryDict(encoding=encoding), MultiValueDict()
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.max_bytes:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def install_upload_cap(request, max_bytes: int | None = None) -> CappedUploadHandler:
    """Replace the request's upload handlers (a Django HttpRequest) by the capped one."""
    handler = CappedUploadHandler(request, max_bytes)
    request.upload_handlers = [handler]
    request._medforge_upload_cap = handler
    return handler


def upload_cap_exceeded(request) -> bool:
    handler = getattr(request, "_medforge_upload_cap", None)
    return bool(handler and handler.exceeded)
