"""Who writes an account assignment. Apart from assignments.py because the status policy names
the writers a user of each status may hold a role through, and assignments.py reads that policy."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    MANUAL = "MANUAL"
    BULK = "BULK"
    INTEGRATION = "INTEGRATION"
    PLAY = "PLAY"
    REASSIGNMENT = "REASSIGNMENT"
