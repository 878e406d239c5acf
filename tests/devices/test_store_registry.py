"""Accounts, logins, tokens, groups, listeners, settings, audit: on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from devices import errors, store
from devices.models import LoginSession
from devices.orm import utcnow

VILLAGE = "goseong-eup-seongnae-ri"
NEIGHBOUR = "goseong-eup-seooe-ri"


async def test_authenticate_checks_password_and_disabled(goseong: AsyncSession) -> None:
    db = goseong
    account = await store.create_account(db, "kim", "long password", "district", "goseong-eup")
    await db.commit()
    assert account.password_hash.startswith("$argon2id$")
    assert (await store.authenticate(db, "kim", "long password")).id == account.id
    for user, password in (("kim", "wrong"), ("lee", "long password")):
        with pytest.raises(errors.BadCredentials):
            await store.authenticate(db, user, password)
    await store.disable_account(db, account)
    await db.commit()
    with pytest.raises(errors.BadCredentials):
        await store.authenticate(db, "kim", "long password")


async def test_login_sessions_expire_and_end(goseong: AsyncSession) -> None:
    db = goseong
    account = await store.create_account(db, "kim", "long password", "admin", "48820")
    cookie, login = await store.start_login(db, account, hours=1)
    await db.commit()
    assert cookie not in login.token_hash
    assert (await store.login_of(db, cookie)) is not None
    login.expires_at = utcnow() - timedelta(seconds=1)
    await db.commit()
    assert await store.login_of(db, cookie) is None
    await store.end_login(db, cookie)
    await db.commit()
    assert await db.get(LoginSession, login.id) is None


async def test_api_tokens_revoke_and_disable(goseong: AsyncSession) -> None:
    db = goseong
    account = await store.create_account(db, "kim", "long password", "admin", "48820")
    other = await store.create_account(db, "lee", "long password", "admin", "48820")
    one = await store.create_api_token(db, account, "one")
    two = await store.create_api_token(db, account, "two")
    await db.commit()
    assert [t.name for t in await store.list_api_tokens(db, account.id)] == ["two", "one"]
    with pytest.raises(errors.UnknownToken):
        await store.revoke_api_token(db, other.id, one.id)
    await store.revoke_api_token(db, account.id, one.id)
    await db.commit()
    assert await store.account_by_api_token(db, one.token) is None
    assert (await store.account_by_api_token(db, two.token)).id == account.id  # type: ignore[union-attr]
    await store.disable_account(db, account)
    await db.commit()
    assert await store.account_by_api_token(db, two.token) is None


@pytest.mark.parametrize(
    ("username", "password", "role", "region", "error"),
    [
        ("kim", "long password", "admin", "goseong-eup", errors.InvalidField),
        ("kim", "long password", "village", "goseong-eup", errors.InvalidField),
        ("kim", "long password", "district", "nowhere", errors.UnknownRegion),
        ("Kim Lee", "long password", "admin", "48820", errors.InvalidField),
        ("kim", "short", "admin", "48820", errors.InvalidField),
    ],
)
async def test_bad_accounts_are_refused(
    goseong: AsyncSession,
    username: str,
    password: str,
    role: str,
    region: str,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await store.create_account(goseong, username, password, role, region)


async def test_duplicate_username_conflicts(goseong: AsyncSession) -> None:
    await store.create_account(goseong, "kim", "long password", "admin", "48820")
    with pytest.raises(errors.AlreadyExists):
        await store.create_account(goseong, "kim", "long password", "admin", "48820")


async def test_groups_keep_members_inside_their_region(goseong: AsyncSession) -> None:
    db = goseong
    a = await store.create_device(db, VILLAGE, "a")
    b = await store.create_device(db, NEIGHBOUR, "b")
    tree = await store.load_tree(db)
    far_village = tree.children(tree.of_kind("district")[1].code)[0].code
    far = await store.create_device(db, far_village, "far")
    group = await store.create_group(db, "읍내", "goseong-eup", [a.id])
    await db.commit()
    with pytest.raises(errors.InvalidField):
        await store.add_group_members(db, group, [far.id])
    with pytest.raises(errors.UnknownDevice):
        await store.add_group_members(db, group, [99999])
    await store.add_group_members(db, group, [b.id, a.id])
    await db.commit()
    assert await store.members_of(db, group.id) == [a.id, b.id]
    assert await store.group_regions(db) == {group.id: "goseong-eup"}
    await store.remove_group_member(db, group, a.id)
    with pytest.raises(errors.UnknownDevice):
        await store.remove_group_member(db, group, a.id)
    await store.delete_group(db, group)
    await db.commit()
    assert await store.group_members(db) == {}
    with pytest.raises(errors.NoSuchGroup):
        await store.get_group(db, group.id)


async def test_listener_paging_filters_and_states(goseong: AsyncSession) -> None:
    db = goseong
    made = [await store.create_listener(db, VILLAGE, f"n{i}", True) for i in range(5)]
    await store.create_listener(db, NEIGHBOUR, "x", True)
    store.revoke_listener(made[0][0])
    await db.commit()
    rows, total = await store.list_listeners(db, [VILLAGE], None, limit=2, offset=0)
    assert total == 5
    assert [r.nickname for r in rows] == ["n4", "n3"]
    rows, total = await store.list_listeners(db, [VILLAGE], "revoked")
    assert (total, rows[0].nickname) == (1, "n0")
    assert (await store.list_listeners(db, None))[1] == 6
    with pytest.raises(errors.WrongState):
        store.approve_listener(made[0][0])
    with pytest.raises(errors.UnknownListener):
        await store.get_listener(db, 99999)


async def test_village_settings_validate_before_changing_anything(goseong: AsyncSession) -> None:
    db = goseong
    await store.update_village_settings(
        db, VILLAGE, {"requires_listener_approval": True, "quiet_hours": "22:00-05:00"}
    )
    await db.commit()
    with pytest.raises(errors.InvalidField):
        await store.update_village_settings(
            db, VILLAGE, {"requires_listener_approval": False, "tags": [1]}
        )
    await db.rollback()
    village = await store.get_village(db, VILLAGE)
    assert village.requires_listener_approval is True
    assert village.quiet_hours == "22:00-05:00"
    listener, _ = await store.create_listener(db, VILLAGE, "new", True)
    assert listener.status == "pending"
    with pytest.raises(errors.UnknownRegion):
        await store.update_village_settings(db, "goseong-eup", {"tags": []})


async def test_audit_pages_newest_first_within_regions(goseong: AsyncSession) -> None:
    db = goseong
    for i in range(3):
        store.audit(db, "cli", "device.add", f"device:{i}", VILLAGE)
    store.audit(db, "cli", "account.add", "account:1", "48820")
    store.audit(db, "cli", "device.add", "device:9", NEIGHBOUR)
    await db.commit()
    rows, total = await store.list_audit(db, None, limit=2)
    assert total == 5
    assert [r.target for r in rows] == ["device:9", "account:1"]
    rows, total = await store.list_audit(db, [VILLAGE], action="device.")
    assert total == 3
    rows, total = await store.list_audit(db, None, action="account")
    assert [r.target for r in rows] == ["account:1"]
    rows, total = await store.list_audit(db, None, action="%")
    assert total == 0  # LIKE wildcards are escaped


async def test_region_import_is_idempotent_and_refuses_bad_trees(db: AsyncSession) -> None:
    first = await store.import_regions_file(db, store.DEMO_REGIONS)
    await db.commit()
    assert await store.import_regions_file(db, store.DEMO_REGIONS) == first
    await db.commit()
    assert len((await store.load_tree(db)).of_kind("village")) == first
    for bad in (
        {},
        {"county": {"code": "c", "name_ko": "군", "name_en": "C"}, "districts": "x"},
        {"county": {"code": "c c", "name_ko": "군", "name_en": "C"}, "districts": []},
        {
            "county": {"code": "c", "name_ko": "군", "name_en": "C"},
            "districts": [{"code": "c", "name_ko": "면", "name_en": "D"}],
        },
    ):
        with pytest.raises(errors.InvalidField):
            await store.import_regions(db, bad)
