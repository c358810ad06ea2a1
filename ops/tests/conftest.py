"""The ops script tests reuse the operations fixtures (GPUs, a pack, placed sessions)."""
from medforge.ops.tests.conftest import gpus, pack, place_session  # noqa: F401
