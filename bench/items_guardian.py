"""The items' release rules as django-guardian generic object permissions, for the inbox comparison.

One group per country and one per agency; every member belongs to their country's and their agency's group. Each
item grants ``view_item`` in guardian's generic ``GroupObjectPermission`` table to: its originating agency's group
(whatever its status); for an active item, the group of each released country without agency restrictions, and the
group of each agency it is restricted to. Named people stay where ISN keeps them, in the direct foreign-key table
(``ItemUserObjectPermission``), which ``get_objects_for_user`` reads for the user part. So
``get_objects_for_user(user, "messaging.view_item", klass=Item)`` answers exactly what ``items_visible_to(user)``
answers, from one generic row per grant: the design the issue rejects (django-guardian issues #68, #741).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

GROUP_PREFIX = "bench-guardian"


@dataclass
class GuardianData:
    rows: int
    seconds: float
    loaded: bool


def _ensure_groups() -> None:
    from django.contrib.auth.models import Group

    from agencies.models import Agency, Country, Membership, Role

    wanted = [f"{GROUP_PREFIX}:country:{code}" for code in Country.objects.values_list("code", flat=True)]
    wanted += [f"{GROUP_PREFIX}:agency:{pk}" for pk in Agency.objects.values_list("pk", flat=True)]
    existing = set(Group.objects.filter(name__in=wanted).values_list("name", flat=True))
    Group.objects.bulk_create([Group(name=name) for name in wanted if name not in existing])
    groups = dict(Group.objects.filter(name__startswith=f"{GROUP_PREFIX}:").values_list("name", "pk"))
    members = Membership.objects.exclude(role__in=[Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR]).select_related(
        "agency"
    )
    Through = Group.user_set.through
    Through.objects.bulk_create(
        [
            Through(user_id=m.user_id, group_id=groups[f"{GROUP_PREFIX}:{kind}:{key}"])
            for m in members
            for kind, key in (("country", m.agency.country_id), ("agency", m.agency_id))
        ],
        ignore_conflicts=True,
    )


def _grants_sql() -> tuple[str, str]:
    """The generic table's name, and a query for one row per (group, item) grant, derived from ISN's grant rows."""
    from guardian.models import GroupObjectPermission

    from messaging.models import Item, ItemAgencyGrant, ItemCountryGrant

    item, country_grant, agency_grant = (m._meta.db_table for m in (Item, ItemCountryGrant, ItemAgencyGrant))
    query = f"""
        SELECT i.id::text AS object_pk, g.id AS group_id
          FROM {item} i JOIN auth_group g ON g.name = '{GROUP_PREFIX}:agency:' || i.originator_agency_id
        UNION ALL
        SELECT cg.item_id::text, g.id
          FROM {country_grant} cg
          JOIN {item} i ON i.id = cg.item_id AND i.status = 'active'
          JOIN auth_group g ON g.name = '{GROUP_PREFIX}:country:' || cg.country_id
         WHERE NOT EXISTS (
               SELECT 1 FROM {agency_grant} ag WHERE ag.item_id = cg.item_id AND ag.country_id = cg.country_id
         )
        UNION ALL
        SELECT ag.item_id::text, g.id
          FROM {agency_grant} ag
          JOIN {item} i ON i.id = ag.item_id AND i.status = 'active' AND i.originator_agency_id <> ag.agency_id
          JOIN auth_group g ON g.name = '{GROUP_PREFIX}:agency:' || ag.agency_id
    """  # noqa: S608 - our own table and group names
    return GroupObjectPermission._meta.db_table, query


def _disable_triggers(cursor) -> bool:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        return False
    cursor.execute("SET session_replication_role = replica")
    return True


def load() -> GuardianData:
    """(Re)build the generic rows when they do not match the items; bulk INSERT ... SELECT, then VACUUM ANALYZE."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from messaging.models import Item

    started = time.perf_counter()
    _ensure_groups()
    table, grants = _grants_sql()
    content_type = ContentType.objects.get_for_model(Item)
    permission = Permission.objects.get(content_type=content_type, codename="view_item")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({grants}) x")  # noqa: S608 - our own table and group names
        expected = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {table} WHERE content_type_id = %s", [content_type.pk])  # noqa: S608
        if cursor.fetchone()[0] == expected:
            return GuardianData(rows=expected, seconds=time.perf_counter() - started, loaded=False)
        with transaction.atomic():
            cursor.execute(f"DELETE FROM {table} WHERE content_type_id = %s", [content_type.pk])  # noqa: S608
            # Foreign-key triggers off where allowed (each row points at one group, permission and content type:
            # three checks a row would triple the load time); in group order, so the index pages fill in turn.
            superuser = _disable_triggers(cursor)
            try:
                cursor.execute(
                    f"INSERT INTO {table} (object_pk, group_id, content_type_id, permission_id) "  # noqa: S608
                    f"SELECT object_pk, group_id, %s, %s FROM ({grants}) x ORDER BY group_id, object_pk",
                    [content_type.pk, permission.pk],
                )
            finally:
                if superuser:
                    cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(f"VACUUM (ANALYZE) {table}")
    return GuardianData(rows=expected, seconds=time.perf_counter() - started, loaded=True)
