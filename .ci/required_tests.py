"""Fail CI when a test that must run every time (the schemathesis run, #11.10) was skipped."""

import sys
import xml.etree.ElementTree as ET

REQUIRED = ("test_schemathesis_finds_no_5xx_and_no_undocumented_response",)


def main(report: str) -> int:
    """1 when a required test case is missing from the report or was skipped."""
    root = ET.parse(report).getroot()
    ran = {c.get("name") for c in root.iter("testcase") if c.find("skipped") is None}
    missing = [name for name in REQUIRED if name not in ran]
    print(f"required tests: {len(REQUIRED) - len(missing)} of {len(REQUIRED)} ran")
    for name in missing:
        print(f"  did not run: {name}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
