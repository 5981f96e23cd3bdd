"""Etags (AIP-154): opaque strings derived from a resource's id and row version."""

from __future__ import annotations

import hashlib

from services.runtime.errors import Aborted


def make_etag(resource_id: str, version: int) -> str:
    digest = hashlib.blake2b(f"{resource_id}:{version}".encode(), digest_size=8).hexdigest()
    return f'"{digest}"'


def check_etag(given: str, current: str) -> None:
    """An empty etag means 'overwrite whatever is there'; any other must match."""
    if given and given != current:
        raise Aborted(
            "ETAG_MISMATCH",
            "the resource changed since it was read; read it again and retry with the new etag",
            metadata={"current_etag": current},
        )
