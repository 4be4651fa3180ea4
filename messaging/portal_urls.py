"""Messaging's portal pages, in the portal's namespace ("portal") given by ``isn.urls``.

/consents/<uuid>/ and /rfis/<uuid>/ are kept for the consent and RFI pages (names "consent" and "rfi": notifications
link to them).
"""

from __future__ import annotations

from django.urls import path

from messaging.interop import portal as interop_portal
from messaging.portal import check_views, sharing_views, views

urlpatterns = [
    path("items/", views.inbox, name="inbox"),
    path("items/new/", views.compose, name="item_new"),
    path("items/<uuid:item_id>/", views.item_detail, name="item"),
    path("items/<uuid:item_id>/acknowledge/", views.item_acknowledge_view, name="item_acknowledge"),
    path("items/<uuid:item_id>/attachments/", views.item_attach, name="item_attach"),
    path("items/<uuid:item_id>/attachments/<uuid:attachment_id>/", views.item_attachment, name="item_attachment"),
    path("items/<uuid:item_id>/stix/", interop_portal.item_stix_download, name="item_stix"),
    path("items/<uuid:item_id>/tracking/", views.item_tracking, name="item_tracking"),
    path("items/<uuid:item_id>/narrow/", views.item_narrow, name="item_narrow"),
    path("items/<uuid:item_id>/withdraw/", views.item_withdraw_view, name="item_withdraw"),
    path("items/<uuid:item_id>/forward/", sharing_views.item_forward_view, name="item_forward"),
    path("items/<uuid:item_id>/consent/", sharing_views.item_consent_view, name="item_consent"),
    path("consents/", sharing_views.consents_page, name="consents"),
    path("consents/<uuid:consent_id>/", sharing_views.consent_detail, name="consent"),
    path("consents/<uuid:consent_id>/approve/", sharing_views.consent_approve, name="consent_approve"),
    path("consents/<uuid:consent_id>/decline/", sharing_views.consent_decline_view, name="consent_decline"),
    path("consents/<uuid:consent_id>/cancel/", sharing_views.consent_cancel_view, name="consent_cancel"),
    path("rfis/", sharing_views.rfis_page, name="rfis"),
    path("rfis/new/", sharing_views.rfi_new, name="rfi_new"),
    path("rfis/<uuid:rfi_id>/", sharing_views.rfi_detail, name="rfi"),
    path("rfis/<uuid:rfi_id>/reply/", sharing_views.rfi_reply_view, name="rfi_reply"),
    path("rfis/<uuid:rfi_id>/close/", sharing_views.rfi_close_view, name="rfi_close"),
    path("notifications/", views.notifications_page, name="notifications"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification_read"),
    path("statistics/", views.statistics_page, name="statistics"),
    path("check/", check_views.check_identifiers, name="check"),
]
