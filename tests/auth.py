"""Signing a persona in to the portal the way a real sign-in ends: password and second factor both done.

``sign_in(client, user)`` is ``client.force_login(user)`` plus a confirmed TOTP device whose verification is in the
session, so pages and the API's session authentication treat the client as fully signed in. Use it for every portal
page and session API test; ``force_login`` alone now leaves a session that only reaches the second-factor pages.
"""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_device(user: Any) -> TOTPDevice:
    """The user's confirmed authenticator, made on first use."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def current_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the authenticator app would show now (or ``steps_ahead`` periods later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time += steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(client: Client, user: Any) -> Client:
    """Sign ``user`` in with both factors verified; returns the client."""
    device = totp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
