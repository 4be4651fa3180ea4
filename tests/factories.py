"""factory_boy factories for the directory. Countries are reference data from a migration: fetch, never build."""

from __future__ import annotations

from datetime import time

import factory
from django.contrib.auth import get_user_model

from agencies.models import Agency, AgencyKind, Country, Membership, Office, OfficeKind, Role


def country(code: str) -> Country:
    return Country.objects.get(code=code)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@isn-test.example.org")
    password = factory.django.Password("correct horse battery staple")


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    country = factory.LazyFunction(lambda: country("VN"))
    name = factory.Sequence(lambda n: f"Agency {n}")
    short_name = factory.Sequence(lambda n: f"AG{n}")
    kind = AgencyKind.POLICE


class OfficeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Office

    agency = factory.SubFactory(AgencyFactory)
    name = factory.Sequence(lambda n: f"Office {n}")
    kind = OfficeKind.BLO
    border_crossing = factory.Sequence(lambda n: f"Crossing {n}")
    province = "Border Province"
    opens_at = time(8, 0)
    closes_at = time(17, 0)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    agency = factory.SubFactory(AgencyFactory)
    office = None
    role = Role.OFFICER
