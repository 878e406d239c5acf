"""Imports every package's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

import importlib

from devices import models as _devices_models  # noqa: F401
from devices.orm import Base

for _name in (
    "recordings.models",
    "streaming.models",
    "broadcast.models",
    "broadcast.notice_models",
    "broadcast.alerts.models",
):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise

metadata = Base.metadata
