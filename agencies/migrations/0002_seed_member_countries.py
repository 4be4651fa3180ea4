"""The seven members of the network are fixed by the Mekong MOU, so they are reference data, not demo data."""

from __future__ import annotations

from django.db import migrations

MEMBERS = [
    ("KH", "Cambodia", True, "Asia/Phnom_Penh"),
    ("CN", "China", True, "Asia/Shanghai"),
    ("LA", "Lao PDR", True, "Asia/Vientiane"),
    ("MM", "Myanmar", True, "Asia/Yangon"),
    ("TH", "Thailand", True, "Asia/Bangkok"),
    ("VN", "Viet Nam", True, "Asia/Ho_Chi_Minh"),
    ("UN", "UNODC", False, "Asia/Bangkok"),
]


def add_members(apps, schema_editor):
    Country = apps.get_model("agencies", "Country")
    for code, name, is_state, timezone in MEMBERS:
        Country.objects.update_or_create(code=code, defaults={"name": name, "is_state": is_state, "timezone": timezone})


def remove_members(apps, schema_editor):
    Country = apps.get_model("agencies", "Country")
    Country.objects.filter(code__in=[code for code, *_ in MEMBERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("agencies", "0001_initial")]

    operations = [migrations.RunPython(add_members, remove_members)]
