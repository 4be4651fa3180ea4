from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from isn.admin_audit import AuditedAdminMixin, AuditedModelAdmin
from isn.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(AuditedModelAdmin):
    list_display = ["hostname", "seen_at"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


# Django's own User and Group admins, re-registered so that account changes made there are audited too.
User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


# Platform staff hold no content role (agencies.selectors.membership_for refuses them one): so the operator cannot
# make a member staff here, which would also be a way to give a member the admin.
_STAFF_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def _is_member(user) -> bool:  # type: ignore[no-untyped-def]
    # The reverse one-to-one accessor, so the ground floor names no app: None when the user has no membership.
    return user is not None and user.pk is not None and getattr(user, "membership", None) is not None


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    def audit_target_country(self, obj) -> str:  # type: ignore[no-untyped-def]
        membership = getattr(obj, "membership", None) if obj.pk else None
        return membership.agency.country_id if membership is not None else ""

    def get_readonly_fields(self, request: HttpRequest, obj=None):  # type: ignore[no-untyped-def]
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + _STAFF_FIELDS if _is_member(obj) else fields

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Django's view saves the new password outside a transaction; the audit event must share one with it.
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass


# django-otp's device admins show the TOTP secret and are not audited: replaced by audited ones without the secret.
# A member's lost second factor is reset by their agency admin and a second person (agencies.memberships), never
# here: an operator who could delete a member's devices could enrol their own in their place. Only the devices of
# accounts without a membership (the platform's staff) may be deleted here.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


class _DeviceAdmin(AuditedModelAdmin):
    list_display = ["user", "name", "confirmed", "last_used_at"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # No bulk action (it would not look at whose devices it deletes); one by one, never a member's.
        return obj is not None and not _is_member(obj.user) and super().has_delete_permission(request, obj)


@admin.register(TOTPDevice)
class AuditedTOTPDeviceAdmin(_DeviceAdmin):
    pass


@admin.register(StaticDevice)
class AuditedStaticDeviceAdmin(_DeviceAdmin):
    pass
