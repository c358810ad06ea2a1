"""MedForge: per-user GPU IDE sessions and permanent competitions on one GPU host."""
from .celery import app as celery_app

__all__ = ["celery_app"]
