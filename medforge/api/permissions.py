"""Permissions shared across apps."""
from __future__ import annotations

from rest_framework.permissions import BasePermission

from .problems import Problem


class IsAdmin(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if not request.user.is_staff:
            raise Problem("admin_required", "This endpoint is for administrators.")
        return True
