"""Korean text made speakable: numbers read the Korean way, units, phone numbers, place names.

Pure functions; ``tts.py`` feeds the result to espeak-ng, which reads Hangul well but digits badly.
"""

from __future__ import annotations

import re

__all__ = ["PLACE_NAMES", "native_number", "pronounce", "sino_number"]

_SINO_DIGITS = "영일이삼사오육칠팔구"
_NATIVE_ONES = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
_NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔"]
_PHONE_DIGITS = "공일이삼사오육칠팔구"

# Counters read with native numbers (한 시, 두 명, 세 살); everything else is read Sino-Korean.
_NATIVE_COUNTERS = (
    "시간", "시", "개", "명", "분께", "살", "마리", "가지", "대", "잔", "그릇", "달", "곳",
)  # fmt: skip

# Place names whose spelling misleads a speech engine: read as pronounced (비음화, 유음화).
PLACE_NAMES: dict[str, str] = {
    "상리면": "상니면",
    "송학리": "송항니",
    "신리": "실리",
    "학림리": "항님니",
    "석지리": "석찌리",
    "고성군청": "고성 군청",
    "읍사무소": "읍싸무소",
    "면사무소": "면사무소",
    "마을회관": "마을 회관",
}

_UNITS: dict[str, str] = {
    "km": " 킬로미터",
    "㎞": " 킬로미터",
    "mm": " 밀리미터",
    "㎜": " 밀리미터",
    "cm": " 센티미터",
    "kg": " 킬로그램",
    "㎏": " 킬로그램",
    "℃": " 도",
    "°C": " 도",
    "%": " 퍼센트",
    "m/s": " 미터 퍼 세컨드",
}


def sino_number(n: int) -> str:
    """A non-negative integer read Sino-Korean: 2026 → 이천이십육, 10 → 십, 0 → 영."""
    if n == 0:
        return "영"
    out = []
    for unit_value, unit_name in ((10**12, "조"), (10**8, "억"), (10**4, "만"), (1, "")):
        part, n = divmod(n, unit_value)
        if not part:
            continue
        words = _below_10000(part)
        if unit_name == "만" and part == 1:
            words = ""  # 만, not 일만
        out.append(words + unit_name)
    return "".join(out)


def _below_10000(n: int) -> str:
    out = []
    for value, name in ((1000, "천"), (100, "백"), (10, "십"), (1, "")):
        digit, n = divmod(n, value)
        if digit:
            out.append(("" if digit == 1 and name else _SINO_DIGITS[digit]) + name)
    return "".join(out)


def native_number(n: int) -> str:
    """1–99 read with native numbers as before a counter: 10 → 열, 12 → 열두, 20 → 스무."""
    if not 1 <= n <= 99:
        return sino_number(n)
    if n == 20:
        return "스무"
    tens, ones = divmod(n, 10)
    return _NATIVE_TENS[tens] + _NATIVE_ONES[ones]


def _month(n: int) -> str:
    return {6: "유", 10: "시"}.get(n, sino_number(n))


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    spoken = f"{native_number(hour) if 1 <= hour <= 24 else sino_number(hour)} 시"
    if minute == 30:
        return spoken + " 삼십 분"
    return spoken + (f" {sino_number(minute)} 분" if minute else "")


def _phone(m: re.Match[str]) -> str:
    return " ".join("".join(_PHONE_DIGITS[int(d)] for d in group) for group in m.groups())


def _counted(m: re.Match[str]) -> str:
    number, counter = int(m.group(1)), m.group(2)
    if counter.startswith(_NATIVE_COUNTERS) and 1 <= number <= 99:
        return f"{native_number(number)} {counter}"
    if counter == "월":
        return f"{_month(number)}월"
    return f"{sino_number(number)} {counter}"


def _decimal(m: re.Match[str]) -> str:
    whole, frac = m.group(1), m.group(2)
    return f"{sino_number(int(whole))} 점 " + "".join(_SINO_DIGITS[int(d)] for d in frac)


def pronounce(text: str) -> str:
    """Text as it should be spoken: numbers in words, units spelled out, place names as said."""
    out = text
    for written, said in PLACE_NAMES.items():
        out = out.replace(written, said)
    out = re.sub(r"\b(\d{2,4})-(\d{3,4})-(\d{4})\b", _phone, out)
    out = re.sub(r"(\d{1,2}):(\d{2})", _time, out)
    out = re.sub(r"(?<=\d),(?=\d{3})", "", out)
    out = re.sub(r"(?<![\w-])-(?=\d+(?:\.\d+)?\s*(?:℃|°C))", "영하 ", out)
    for written, said in sorted(_UNITS.items(), key=lambda kv: -len(kv[0])):
        out = re.sub(rf"(?<=\d)\s*{re.escape(written)}", said, out)
    out = re.sub(r"(\d+)\.(\d+)", _decimal, out)
    out = re.sub(r"(\d+)\s*([가-힣]+)", _counted, out)
    out = re.sub(r"\d+", lambda m: sino_number(int(m.group(0))), out)
    out = out.replace("~", " 에서 ")
    return re.sub(r"[ \t]+", " ", out).strip()
