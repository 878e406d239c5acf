"""The registry store on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from devices import errors, store
from devices.models import Device, DeviceGroup, DeviceGroupMember
from devices.orm import utcnow
from devices.targets import Targets


async def test_device_token_is_stored_hashed_and_authenticates(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    issued = await store.create_device(db, "goseong-eup-seongnae-ri", "회관 앞")
    await db.commit()
    device = await db.get(Device, issued.id)
    assert device is not None
    assert issued.token not in device.token_hash
    found = (await store.client_by_token(db, issued.token)).client
    assert found.id == issued.id
    with pytest.raises(errors.BadToken):
        await store.client_by_token(db, issued.token + "x")


async def test_unknown_village_is_refused(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    with pytest.raises(errors.UnknownRegion):
        await store.create_device(db, "nowhere-ri", "x")


async def test_load_tree_has_goseong_districts_and_villages(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    tree = await store.load_tree(db)
    assert tree.roots == ("48820",)
    districts = tree.of_kind("district")
    assert len(districts) == 14
    assert districts[0].code == "goseong-eup"
    assert tree.district_of("goseong-eup-seongnae-ri") == "goseong-eup"
    assert len(tree.of_kind("village")) == len(tree.villages_under("48820")) > 100


async def test_resolve_against_the_database(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    a = await store.create_device(db, "goseong-eup-seongnae-ri", "a")
    b = await store.create_device(db, "goseong-eup-seongnae-ri", "b")
    c = await store.create_device(db, "goseong-eup-seooe-ri", "c")
    gone = await store.create_device(db, "goseong-eup-seooe-ri", "gone")
    (await db.get(Device, gone.id)).revoked_at = utcnow()  # type: ignore[union-attr]
    group = DeviceGroup(name="coastal", region_code="48820")
    db.add(group)
    await db.flush()
    db.add_all(
        [
            DeviceGroupMember(group_id=group.id, device_id=c.id),
            DeviceGroupMember(group_id=group.id, device_id=gone.id),
        ]
    )
    await db.commit()

    assert await store.devices_by_village(db) == {
        "goseong-eup-seongnae-ri": {a.id, b.id},
        "goseong-eup-seooe-ri": {c.id},
    }
    assert await store.devices_by_village(db, ["goseong-eup-seooe-ri"]) == {
        "goseong-eup-seooe-ri": {c.id}
    }
    assert await store.group_members(db) == {group.id: {c.id}}
    r = await store.resolve(db, Targets(groups=(group.id,)))
    assert r.villages == {"goseong-eup-seooe-ri"}
    assert r.device_ids == {c.id}
    r = await store.resolve(db, Targets(districts=("goseong-eup",)))
    assert r.device_ids == {a.id, b.id, c.id}
    with pytest.raises(errors.UnknownRegion):
        await store.resolve(db, Targets(villages=("goseong-eup",)))


async def test_listeners_of_lists_only_active_listeners(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    village = "goseong-eup-seongnae-ri"
    first, _ = await store.create_listener(db, village, "하나", True)
    second, _ = await store.create_listener(db, village, "둘", True)
    await store.create_listener(db, "goseong-eup-seooe-ri", "셋", True)
    second.status = "revoked"
    await db.commit()
    assert [x.id for x in await store.listeners_of(db, village)] == [first.id]
