"""Ids, and whether the process behind a lease owner still lives.

An owner id is ``host:pid:random``: unique per controller, and it says where to look for the
process. A lease whose owner is a dead process of this host is taken over at once instead of
waiting for it to expire.
"""

from __future__ import annotations

import os
import secrets
import socket
import string
from pathlib import Path

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 8) -> str:
    """A short random id in W&B's style (lowercase letters and digits)."""
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in secrets.token_bytes(length))


def owner_id() -> str:
    """``host:pid:random`` of this process, for a controller's leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id(6)}"


def owner_alive(owner: str) -> bool:
    """False only when the owner is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    return pid_alive(int(pid_text))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs. A zombie does not: it died and only waits
    for its parent to read its exit code (a killed agent whose controller is gone stays one
    until that process ends), so its runs and leases are free at once."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Linux's word on it (``/proc/PID/stat``); elsewhere, no zombie is seen."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
