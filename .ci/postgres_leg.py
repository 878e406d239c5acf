"""Fail CI when the PostgreSQL leg of the store tests was skipped instead of run."""

import sys
import xml.etree.ElementTree as ET


def main(report: str) -> int:
    """Count the ``[postgres]`` test cases that ran; 1 when there are none."""
    root = ET.parse(report).getroot()
    cases = [c for c in root.iter("testcase") if "[postgres" in c.get("name", "")]
    ran = [c for c in cases if c.find("skipped") is None]
    print(f"PostgreSQL leg: {len(ran)} of {len(cases)} tests ran")
    return 0 if ran and len(ran) == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
