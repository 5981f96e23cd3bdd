"""A page of the user list with a status and text filter. ListUsers filters by neither, so the
console reads the service's pages in order and keeps the matches; the cursor says where in which
service page the next console page starts, so paging stays exact while the directory changes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from steward.users.v1 import users_pb2

SERVICE_PAGE = 200
Fetch = Callable[[str], users_pb2.ListUsersResponse]


def encode_cursor(service_token: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{service_token}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, int]:
    """("", 0) for the first page, or for a cursor that was not made here."""
    try:
        offset, _, token = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return token, max(int(offset), 0)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "", 0


def matches(user: users_pb2.User, status: int, text: str) -> bool:
    if status and user.status != status:
        return False
    needle = text.casefold()
    return not needle or any(needle in s.casefold() for s in (user.email, user.first_name, user.last_name))


def filtered_page(
    fetch: Fetch, status: int, text: str, page_size: int, cursor: str
) -> tuple[list[users_pb2.User], str]:
    """Up to page_size matching users, and the cursor of the next page ("" on the last)."""
    token, offset = decode_cursor(cursor)
    found: list[users_pb2.User] = []
    while True:
        reply = fetch(token)
        users = list(reply.users)
        for index in range(offset, len(users)):
            if not matches(users[index], status, text):
                continue
            found.append(users[index])
            if len(found) == page_size:
                if index + 1 < len(users):
                    return found, encode_cursor(token, index + 1)
                return found, encode_cursor(reply.next_page_token, 0) if reply.next_page_token else ""
        if not reply.next_page_token:
            return found, ""
        token, offset = reply.next_page_token, 0
