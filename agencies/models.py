"""The network's directory: member countries, their agencies and offices, and who belongs where in which role."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CountryCode(models.TextChoices):
    """ISO 3166-1 alpha-2 codes of the six Mekong MOU members, plus UN for UNODC, the secretariat."""

    CAMBODIA = "KH", _("Cambodia")
    CHINA = "CN", _("China")
    LAO_PDR = "LA", _("Lao PDR")
    MYANMAR = "MM", _("Myanmar")
    THAILAND = "TH", _("Thailand")
    VIET_NAM = "VN", _("Viet Nam")
    UNODC = "UN", _("UNODC")


class Country(models.Model):
    """A member of the network: one of the six states, or UNODC (a non-state member)."""

    code = models.CharField(max_length=2, primary_key=True, choices=CountryCode.choices)
    name = models.CharField(max_length=100)
    is_state = models.BooleanField(default=True, help_text=_("False for UNODC, the MOU's secretariat."))
    timezone = models.CharField(max_length=64, help_text=_("IANA time zone name, e.g. Asia/Ho_Chi_Minh."))

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "countries"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class AgencyKind(models.TextChoices):
    POLICE = "police", _("Police")
    BORDER_GUARD = "border_guard", _("Border guard")
    CUSTOMS = "customs", _("Customs")
    DRUG_CONTROL = "drug_control", _("Drug control commission")
    UNODC = "unodc", _("UNODC")


class Agency(models.Model):
    country = models.ForeignKey(Country, on_delete=models.PROTECT, related_name="agencies")
    name = models.CharField(max_length=200)
    short_name = models.CharField(max_length=32, help_text=_("Acronym used in the directory, e.g. ONCB."))
    kind = models.CharField(max_length=20, choices=AgencyKind.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["country_id", "name"]
        verbose_name_plural = "agencies"
        constraints = [
            models.UniqueConstraint(fields=["country", "name"], name="agency_unique_name_per_country"),
            models.UniqueConstraint(fields=["country", "short_name"], name="agency_unique_short_name_per_country"),
        ]

    def __str__(self) -> str:
        return f"{self.short_name} ({self.country_id})"


class OfficeKind(models.TextChoices):
    BLO = "blo", _("Border Liaison Office")
    DUTY_DESK = "duty_desk", _("Headquarters duty desk")


class Office(models.Model):
    """A Border Liaison Office at a crossing, or an agency's headquarters duty desk."""

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="offices")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=OfficeKind.choices)
    border_crossing = models.CharField(max_length=200, blank=True)
    province = models.CharField(max_length=100)
    opens_at = models.TimeField(help_text=_("Start of working hours, local time."))
    closes_at = models.TimeField(help_text=_("End of working hours, local time."))
    contact_phone = models.CharField(max_length=40, blank=True)
    contact_email = models.EmailField(blank=True)
    counterparts = models.ManyToManyField(
        "self",
        symmetrical=True,
        blank=True,
        help_text=_("Offices across the border that this office works with directly."),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agency__country_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "name"], name="office_unique_name_per_agency"),
            models.UniqueConstraint(
                fields=["agency"],
                condition=Q(kind="duty_desk"),
                name="office_one_duty_desk_per_agency",
            ),
            models.CheckConstraint(
                condition=Q(kind="duty_desk") | ~Q(border_crossing=""),
                name="office_blo_has_border_crossing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.agency.short_name}, {self.agency.country_id})"


class Role(models.TextChoices):
    OFFICER = "officer", _("Officer")
    SUPERVISOR = "supervisor", _("Supervisor")
    NATIONAL_FOCAL_POINT = "national_focal_point", _("National focal point")
    AGENCY_ADMIN = "agency_admin", _("Agency admin")
    NATIONAL_AUDITOR = "national_auditor", _("National auditor")
    REGIONAL_AUDITOR = "regional_auditor", _("Regional auditor")


# Roles that never receive content (DESIGN.md: auditors see no content). Every other role reads its agency's items, so
# granting one is granting access to a country's items: only that agency's admin does (``agencies.services``), and
# never to the platform's staff (``agencies.selectors.membership_for``).
NO_CONTENT_ROLES = (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)


class Membership(models.Model):
    """A user's place in the network: one agency, optionally one office, one role."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="memberships")
    office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    # The portal's language for this person (one of settings.LANGUAGES); blank: the browser's choice.
    language = models.CharField(max_length=10, blank=True)
    email_notifications = models.BooleanField(
        default=True, help_text=_("E-mail this person about items routed to them, not only in the portal.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The access review (agencies.reviews): when an admin last confirmed that this person still needs this place, and
    # who. A membership not confirmed within ISN_ACCESS_REVIEW_DAYS is suspended. Creating a membership confirms it.
    # Not editable: the platform's staff cannot confirm on an agency's behalf through the Django admin.
    confirmed_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )

    class Meta:
        ordering = ["agency_id", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} at {self.agency}"

    @property
    def country_id(self) -> str:
        return self.agency.country_id


class CountryKeyStatus(models.TextChoices):
    PRIMARY = "primary", _("Primary: wraps new data keys")
    DECRYPT_ONLY = "decrypt_only", _("Being rotated out: unwraps only")
    RETIRED = "retired", _("Retired: key material destroyed")


class MasterKeyStatus(models.TextChoices):
    PRIMARY = "primary", _("Primary: wraps new keys")
    RETIRING = "retiring", _("Retiring: its keys are being re-wrapped")
    DESTROYED = "destroyed", _("Destroyed: nothing refers to it any more")


class MasterKeyBackend(models.TextChoices):
    ENVIRONMENT = "environment", _("Environment or file key")
    PKCS11 = "pkcs11", _("PKCS#11 module")


class MasterKeyVersion(models.Model):
    """One version of the master key, known by where it is kept, never by its value (isn.masterkey).

    ``reference`` is the key's fingerprint for an environment key and the token object's label for a PKCS#11 key.
    Country keys, match keys and webhook secrets each name the version that wrapped them (``master_version``);
    ``manage.py rotate_master_key`` moves them to a new primary version and destroys the old one when nothing refers
    to it any more.
    """

    version = models.PositiveIntegerField(unique=True)
    backend = models.CharField(max_length=20, choices=MasterKeyBackend.choices)
    reference = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=MasterKeyStatus.choices, default=MasterKeyStatus.PRIMARY)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="primary"), name="master_key_one_primary"),
        ]

    def __str__(self) -> str:
        return f"master key v{self.version} ({self.backend}, {self.status})"


class CountryKey(models.Model):
    """One version of a country's key-encryption key, stored only wrapped by the master key.

    Data keys of items released to the country are wrapped with it. Rotation makes a new primary version, re-wraps
    the data keys, then retires the old version by destroying its key material.
    """

    country = models.ForeignKey(Country, on_delete=models.PROTECT, related_name="keys")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=CountryKeyStatus.choices, default=CountryKeyStatus.PRIMARY)
    wrapped_key = models.BinaryField(editable=False)
    # The master key version (MasterKeyVersion.version) that wrapped ``wrapped_key``.
    master_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["country_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["country", "version"], name="country_key_unique_version"),
            models.UniqueConstraint(fields=["country"], condition=Q(status="primary"), name="country_key_one_primary"),
        ]

    def __str__(self) -> str:
        return f"{self.country_id} key v{self.version} ({self.status})"


class MatchKeyStatus(models.TextChoices):
    PRIMARY = "primary", _("Primary: makes new match tokens")
    PREVIOUS = "previous", _("Previous: its tokens are being recomputed")
    RETIRED = "retired", _("Retired: key material destroyed")


class MatchKey(models.Model):
    """One version of the network's match key, stored only wrapped by the master key.

    Matchable entity values are kept as blind tokens, HMAC-SHA256 under this key, never in clear. Rotation makes a
    new primary version; the previous one still computes tokens (a check looks under both) until every token is
    recomputed with the new one, and is then retired by destroying its key material.
    """

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=20, choices=MatchKeyStatus.choices, default=MatchKeyStatus.PRIMARY)
    wrapped_key = models.BinaryField(editable=False)
    # The master key version (MasterKeyVersion.version) that wrapped ``wrapped_key``.
    master_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="primary"), name="match_key_one_primary"),
        ]

    def __str__(self) -> str:
        return f"match key v{self.version} ({self.status})"


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Write")
    AUDIT = "audit", _("Audit")
    # The agency's delivery settings (webhooks, subscriptions); never its API keys or people.
    ADMIN = "admin", _("Admin")


class ApiKey(models.Model):
    """An agency system's credential for the REST API: shown once at issue, stored only as a SHA-256 hash.

    A key acts through its own service account (``user``), a member of the agency, so every scoped selector and
    every audit event treats it like any other member; its scopes then limit what it may do.
    """

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="api_keys")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text=_("Public part of the key, to find it."))
    key_hash = models.CharField(max_length=64, help_text=_("SHA-256 of the secret part, hex."))
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["agency_id", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}, {self.agency})"


class SyncDeclarationStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting a national auditor")
    APPROVED = "approved", _("Approved")
    REFUSED = "refused", _("Refused")
    REPLACED = "replaced", _("Replaced by a later declaration")


class SyncDeclaration(models.Model):
    """An agency admin's statement that a key is an agency system's sync, reading about ``daily_reads`` a day.

    It takes effect only when a national auditor of the key's country approves it, and from that moment: the bulk-read
    flags then judge the key's reads against it instead of against a person's thresholds. A new declaration replaces
    a pending one at once, but an approved one only when the new one is approved in turn, so the volume in force is
    always one that an auditor approved. Each row is kept: what was in force when is history the flags need.
    """

    key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="sync_declarations")
    daily_reads = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=SyncDeclarationStatus.choices, default=SyncDeclarationStatus.PENDING
    )
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    declared_at = models.DateTimeField()
    # The national auditor who approved or refused it, and when; an approved declaration is in force from then on.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    refusal_reason = models.CharField(max_length=500, blank=True)
    # When a later declaration replaced it: a pending one stops waiting, an approved one stops being in force.
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-declared_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=Q(status="pending"), name="sync_declaration_one_pending"),
            models.UniqueConstraint(
                fields=["key"], condition=Q(status="approved"), name="sync_declaration_one_approved"
            ),
            models.CheckConstraint(condition=Q(daily_reads__gte=1), name="sync_declaration_positive_volume"),
        ]

    def __str__(self) -> str:
        return f"{self.key.prefix}: {self.daily_reads} reads a day ({self.status})"


class ProposalKind(models.TextChoices):
    AGENCY_ADMIN = "agency_admin", _("A new admin of an agency that has one")
    FIRST_ADMIN = "first_admin", _("The first admin of an agency that has none")
    SECOND_FACTOR_RESET = "second_factor_reset", _("Reset of a member's lost second factor")


class ProposalStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting a second person")
    APPROVED = "approved", _("Approved and applied")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled by its proposer")
    EXPIRED = "expired", _("Expired undecided")


class MembershipProposal(models.Model):
    """A step that one person may not take alone, proposed by one and applied only when a second approves it
    (``agencies.memberships``): a new agency admin, an agency's first admin, the reset of a lost second factor."""

    kind = models.CharField(max_length=24, choices=ProposalKind.choices)
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="membership_proposals")
    # The role and office the subject gets (agency_admin, first_admin); blank for a second-factor reset.
    role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "kind"], condition=Q(status="pending"), name="membership_proposal_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject} at {self.agency} ({self.status})"
