"""The registry store on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from devices import errors, store
from devices.models import Device


async def test_device_token_is_stored_hashed_and_authenticates(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    issued = await store.create_device(db, "goseong-eup-seongnae-ri", "회관 앞")
    await db.commit()
    device = await db.get(Device, issued.id)
    assert device is not None
    assert issued.token not in device.token_hash
    found = await store.device_by_token(db, issued.token)
    assert found is not None
    assert found.id == issued.id
    assert await store.device_by_token(db, issued.token + "x") is None


async def test_unknown_village_is_refused(db: AsyncSession) -> None:
    await store.import_regions_file(db, store.DEMO_REGIONS)
    with pytest.raises(errors.UnknownRegion):
        await store.create_device(db, "nowhere-ri", "x")
