"""factory-boy factories for GPUs, packs and sessions (rows only; no containers)."""
from __future__ import annotations

import factory

from medforge.accounts.factories import UserFactory

from .models import GPU, Pack, Session, SessionStatus

ZERO_IMAGE = "sha256:" + "0" * 64


class GPUFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GPU
        django_get_or_create = ("index",)

    index = factory.Sequence(lambda n: n)
    uuid = factory.LazyAttribute(lambda o: f"GPU-test-{o.index:04d}")
    name = "Test GPU"
    memory_mb = 24576


class PackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pack
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"pack-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    image = ZERO_IMAGE
    exposure = "both"


class SessionFactory(factory.django.DjangoModelFactory):
    """A session row. Active ones hold their GPU (`active_gpu`), as the constraint demands."""

    class Meta:
        model = Session

    owner = factory.SubFactory(UserFactory)
    exposure = "external"
    pack = factory.SubFactory(PackFactory)
    gpu = factory.SubFactory(GPUFactory)
    status = SessionStatus.RUNNING
    active_gpu = factory.LazyAttribute(
        lambda o: o.gpu if o.status in ("starting", "running", "stopping") else None)
