"""Numbers, units, phone numbers and place names read the Korean way."""

from __future__ import annotations

import pytest

from recordings.pronounce import native_number, pronounce, sino_number


@pytest.mark.parametrize(
    ("n", "said"),
    [(0, "영"), (1, "일"), (10, "십"), (16, "십육"), (100, "백"), (1500, "천오백"),
     (2026, "이천이십육"), (10000, "만"), (35000, "삼만오천"), (100000000, "일억")],
)  # fmt: skip
def test_sino_numbers(n: int, said: str) -> None:
    assert sino_number(n) == said


@pytest.mark.parametrize(
    ("n", "said"),
    [(1, "한"), (2, "두"), (3, "세"), (4, "네"), (10, "열"), (11, "열한"), (12, "열두"),
     (20, "스무"), (21, "스물한"), (99, "아흔아홉")],
)  # fmt: skip
def test_native_numbers_before_a_counter(n: int, said: str) -> None:
    assert native_number(n) == said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("오전 10시", "오전 열 시"),
        ("2026년", "이천이십육 년"),
        ("2026년 11월 25일", "이천이십육 년 십일월 이십오 일"),
        ("6월 10월", "유월 시월"),
        ("10:30에 모입니다", "열 시 삼십 분에 모입니다"),
        ("오후 2:05", "오후 두 시 오 분"),
        ("주민 20명", "주민 스무 명"),
        ("1,500원", "천오백 원"),
        ("강수확률 80%", "강수확률 팔십 퍼센트"),
        ("기온 -3℃", "기온 영하 삼 도"),
        ("3.5km", "삼 점 오 킬로미터"),
        ("문의 055-670-2114", "문의 공오오 육칠공 이일일사"),
        ("상리면 송학리", "상니면 송항니"),
        ("3층 2호", "삼 층 이 호"),
    ],
)
def test_pronounce(text: str, said: str) -> None:
    assert pronounce(text) == said


def test_text_without_numbers_is_unchanged() -> None:
    assert pronounce("주민 여러분께 알려드립니다.") == "주민 여러분께 알려드립니다."
