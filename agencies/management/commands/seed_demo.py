"""Load the demo network: the seven members' agencies, BLO counterpart pairs, and one user per role.

Idempotent: whatever already exists is left exactly as it is, so a second run changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from agencies import demo
from agencies.api_keys import api_key_issue
from agencies.models import Agency, ApiKey, ApiKeyScope, Country, Membership, Office, OfficeKind
from agencies.reviews import memberships_confirm, review_period
from agencies.services import agency_create, membership_create, office_create, office_link_counterpart


def _contact(name: str) -> tuple[str, str]:
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    slug = name.lower().replace(" ", "-")
    return f"+1-555-{digest % 10_000:04d}", f"{slug}@isn-demo.example.org"


class Command(BaseCommand):
    help = "Load the demo network (idempotent). Refused in production."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates accounts with a published password; it never runs in production.")
        created = self._seed()
        self._print_logins(created)

    @transaction.atomic
    def _seed(self) -> int:
        countries = {country.code: country for country in Country.objects.all()}
        agencies: dict[str, Agency] = {}
        for spec in demo.AGENCIES:
            agency = Agency.objects.filter(country_id=spec.country, short_name=spec.short_name).first()
            if agency is None:
                agency = agency_create(
                    actor=None,
                    country=countries[spec.country],
                    name=spec.name,
                    short_name=spec.short_name,
                    kind=spec.kind,
                )
            agencies[f"{spec.country}/{spec.short_name}"] = agency
            self._office(agency, f"{spec.short_name} duty desk", OfficeKind.DUTY_DESK, "", spec.duty_desk_province)

        offices: dict[str, Office] = {}
        for left, right in demo.BLO_PAIRS:
            pair = [
                self._office(agencies[blo.agency], blo.name, OfficeKind.BLO, blo.border_crossing, blo.province)
                for blo in (left, right)
            ]
            offices[left.name], offices[right.name] = pair
            office_link_counterpart(actor=None, office=pair[0], counterpart=pair[1])

        created = self._users(agencies, offices)
        self._api_keys(agencies)
        self._keep_confirmed()
        return created

    def _office(self, agency: Agency, name: str, kind: str, crossing: str, province: str) -> Office:
        office = Office.objects.filter(agency=agency, name=name).first()
        if office is not None:
            return office
        opens_at, closes_at = demo.WORKING_HOURS if kind == OfficeKind.BLO else demo.DUTY_DESK_HOURS
        phone, email = _contact(name)
        return office_create(
            actor=None,
            agency=agency,
            name=name,
            kind=kind,
            province=province,
            border_crossing=crossing,
            opens_at=opens_at,
            closes_at=closes_at,
            contact_phone=phone,
            contact_email=email,
        )

    def _users(self, agencies: dict[str, Agency], offices: dict[str, Office]) -> int:
        User = get_user_model()
        # One hash for every demo account: hashing is deliberately slow, and these share one published password.
        password_hash = make_password(demo.DEMO_PASSWORD)
        created = 0
        if not User.objects.filter(username=demo.PLATFORM_ADMIN_USERNAME).exists():
            User.objects.create(
                username=demo.PLATFORM_ADMIN_USERNAME,
                password=password_hash,
                is_staff=True,
                is_superuser=True,
                first_name="ISN",
                last_name="Operator",
            )
            created += 1
        for spec in demo.USERS:
            user = User.objects.filter(username=spec.username).first()
            if user is None:
                user = User.objects.create(
                    username=spec.username,
                    password=password_hash,
                    first_name=spec.first_name,
                    last_name=spec.last_name,
                    email=f"{spec.username}@isn-demo.example.org",
                )
                created += 1
            if Membership.objects.filter(user=user).exists():
                continue
            agency = agencies[spec.agency]
            if spec.office == "duty desk":
                office = Office.objects.get(agency=agency, kind=OfficeKind.DUTY_DESK)
            else:
                office = offices[spec.office] if spec.office else None
            membership_create(actor=None, user=user, agency=agency, office=office, role=spec.role)
        return created

    def _keep_confirmed(self) -> None:
        """The demo's people stay confirmed (agencies.reviews), so a demo kept for months is not suspended by the
        review sweep: those past half their review period are confirmed again, by ISN itself; others are left as
        they are, so a second run still changes nothing."""
        stale = timezone.now() - review_period() / 2
        names = [spec.username for spec in demo.USERS]
        by_agency: dict[int, list[int]] = {}
        demo_people = Membership.objects.filter(user__username__in=names, is_active=True, confirmed_at__lte=stale)
        for pk, agency_id in demo_people.values_list("pk", "agency_id"):
            by_agency.setdefault(agency_id, []).append(pk)
        for agency in Agency.objects.filter(pk__in=by_agency):
            memberships_confirm(actor=None, agency=agency, membership_ids=by_agency[agency.pk])

    def _api_keys(self, agencies: dict[str, Agency]) -> None:
        for name in demo.API_KEY_AGENCIES:
            agency = agencies[name]
            if ApiKey.objects.filter(agency=agency, name=demo.API_KEY_NAME).exists():
                continue
            prefix, secret = demo.api_key_parts(name)
            api_key_issue(
                actor=None,
                agency=agency,
                name=demo.API_KEY_NAME,
                scopes=[ApiKeyScope.READ, ApiKeyScope.WRITE],
                expires_at=timezone.now() + timedelta(days=365),
                demo_prefix=prefix,
                demo_secret=secret,
            )

    def _print_logins(self, created: int) -> None:
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo network ready ({created} new accounts)."))
        out.write(
            f"Sign in at http://127.0.0.1:8000/ with any of these usernames and the password {demo.DEMO_PASSWORD!r}:"
        )
        for spec in demo.USERS:
            out.write(f"  {spec.username:<16} {spec.role:<22} {spec.agency}  {spec.office or ''}")
        out.write(f"  {demo.PLATFORM_ADMIN_USERNAME:<16} platform administrator (Django admin at /admin/)")
        out.write(
            "Demo API keys (read and write), e.g. curl -H 'Authorization: Api-Key <key>' "
            "http://127.0.0.1:8000/api/v1/items/:"
        )
        for name in demo.API_KEY_AGENCIES:
            prefix, secret = demo.api_key_parts(name)
            out.write(f"  {name:<16} isn_{prefix}_{secret}")
