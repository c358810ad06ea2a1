"""Tests of the runtime adapters (Docker, workspaces, GPUs); no database."""
