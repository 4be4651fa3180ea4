"""The language picker, the member's saved language, and dates and numbers in the chosen language."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from agencies.models import Membership
from agencies.templatetags.member_tags import country_name
from audit.models import AuditEvent
from isn.templatetags.portal_tags import grouped
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def _lang(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


def test_the_members_saved_language_wins_over_the_browsers(net):
    user = net.user("kh.officer")
    Membership.objects.filter(user=user).update(language="km")
    client = sign_in(Client(HTTP_ACCEPT_LANGUAGE="en"), user)
    for path in ("/", "/items/", "/directory/"):
        response = client.get(path)
        assert _lang(response) == "km", path
        assert response["Content-Language"] == "km"


def test_the_picker_keeps_the_choice_on_the_member_and_in_a_cookie(net):
    user = net.user("vn.officer")
    client = sign_in(Client(), user)
    response = client.post("/language/", {"language": "vi", "next": "/items/"})
    assert response.status_code == 302
    assert response["Location"] == "/items/"
    assert Membership.objects.get(user=user).language == "vi"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "vi"
    event = AuditEvent.objects.get(action="agencies.membership.preferences")
    assert (event.actor_user_id, event.details) == (user.pk, {"language": "vi"})
    # Another device, with no cookie and a browser asking for English: still Vietnamese.
    other = sign_in(Client(HTTP_ACCEPT_LANGUAGE="en"), user)
    assert _lang(other.get("/items/")) == "vi"


def test_the_picker_works_before_sign_in_and_in_lao(client):
    response = client.post("/language/", {"language": "lo", "next": "/accounts/login/"})
    assert response["Location"] == "/accounts/login/"
    page = client.get("/accounts/login/")
    assert _lang(page) == "lo"  # Django has no Lao of its own: our catalog makes it a language the portal offers
    assert 'value="lo" lang="lo" selected' in page.content.decode()


def test_the_picker_ignores_unknown_languages_and_foreign_next_addresses(net):
    user = net.user("vn.officer")
    client = sign_in(Client(), user)
    response = client.post("/language/", {"language": "xx", "next": "https://elsewhere.example/"})
    assert response["Location"] == "/"
    assert Membership.objects.get(user=user).language == ""
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert client.get("/language/").status_code == 405


def test_the_account_page_saves_language_and_email_choice(net):
    user = net.user("kh.officer")
    client = sign_in(Client(), user)
    page = client.get("/account/").content.decode()
    assert "kh.officer" in page
    assert 'name="email_notifications"' in page
    assert "checked" in page
    response = client.post("/account/", {"language": "th"})  # the e-mail box unticked
    assert response.status_code == 302
    membership = Membership.objects.get(user=user)
    assert (membership.language, membership.email_notifications) == ("th", False)
    event = AuditEvent.objects.get(action="agencies.membership.preferences")
    assert event.details == {"language": "th", "email_notifications": False}
    assert _lang(client.get("/account/")) == "th"
    client.post("/account/", {"language": "", "email_notifications": "on"})
    membership.refresh_from_db()
    assert (membership.language, membership.email_notifications) == ("", True)
    assert client.post("/account/", {"language": "xx"}).status_code == 200  # refused by the form, nothing saved
    assert Membership.objects.get(user=user).language == ""


def test_dates_follow_the_chosen_language(net, post):
    item = post(net.user("vn.officer"), countries=["VN", "KH"])
    user = net.user("kh.officer")
    client = sign_in(Client(), user)
    Membership.objects.filter(user=user).update(language="zh-hans")
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert f"{item.review_date.year}年{item.review_date.month}月{item.review_date.day}日" in page
    Membership.objects.filter(user=user).update(language="en")
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert item.review_date.strftime("%b %Y").lstrip("0") in page  # "j M Y": never the US month/day order


def test_numbers_and_country_names_follow_the_chosen_language():
    with translation.override("vi"):
        assert grouped(1234567) == "1.234.567"
    with translation.override("en"):
        assert grouped(1234567) == "1,234,567"
        assert country_name("LA") == "Lao PDR"
        assert country_name("ZZ") == "ZZ"
    with translation.override("lo"):
        assert grouped(1234) == "1,234"


def test_times_are_shown_in_the_members_country(net, post):
    client = sign_in(Client(), net.user("th.officer"))
    assert "Times are shown in" in client.get("/items/").content.decode()
    assert "Asia/Bangkok" in client.get("/items/").content.decode()
