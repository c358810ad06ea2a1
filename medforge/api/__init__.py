"""Shared API plumbing: envelope, problem+json, pagination, request ids, origin guard."""
