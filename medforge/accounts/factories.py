"""factory-boy factories for accounts."""
from __future__ import annotations

import factory

from .models import User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    handle = factory.Sequence(lambda n: f"user-{n}")
    display_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True
    can_use_internal = True
    email = factory.Sequence(lambda n: f"admin{n}@example.org")
    handle = factory.Sequence(lambda n: f"admin-{n}")
