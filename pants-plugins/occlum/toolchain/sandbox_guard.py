"""Stop a sandbox script promptly when the process that started it (Pants) dies.

Stdlib only. util_rules/bundled_tools.py puts this file beside every script in its sandbox, and
the script imports it from there; its bytes are in each step's input digest with the script's.

Pants starts every step in a session of its own (`setsid`), and it is the Pants process that kills
that session when a step is cancelled. When Pants itself dies (`kill -KILL` of `pants --no-pantsd`),
nobody does: the script is re-parented to init (or a subreaper) and would go on extracting or
downloading for minutes as an orphan. So a script calls `start()` once and `check()` in each of its
long loops (download chunks, archive members, extraction, hashing, re-pack):

* `start()` records the parent's pid and starts a daemon thread that compares `os.getppid()` with
  it every POLL_SECONDS. The thread also stops a script that is blocked in one long call (a socket
  read, a decompression, `occlum new`), where no loop runs.
* `check()` makes the same comparison at once; it is a single cheap system call.

A changed parent pid means the parent died. Then the guard kills the processes the script started
(its whole process group when the script leads one, as under Pants), and exits.

Why not PR_SET_PDEATHSIG: Linux sends that signal when the *thread* that forked the child ends, not
when the parent process ends (prctl(2)). Pants forks its steps from tokio runtime threads, and a
runtime thread can end while Pants lives on (tokio retires idle threads; pantsd rebuilds its runtime
between runs), which would kill a healthy step. It is also set only after exec, so a parent that dies
before that goes unnoticed. Polling the parent pid has neither problem, so this module does not set
it at all.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Optional

# How often the watcher thread looks: a step stops within this after its parent dies, and a
# getppid() four times a second costs nothing.
POLL_SECONDS = 0.25
# The exit code of a script stopped because its parent died (nobody reads it; tests do).
EXIT_ORPHANED = 4

_parent: Optional[int] = None
_children: set[int] = set()
_lock = threading.Lock()


def start() -> None:
    """Watch the parent process from now on. Idempotent. Stops at once when Pants died before this
    call (the script was already re-parented to init)."""
    global _parent
    with _lock:
        if _parent is not None:
            return
        ppid = os.getppid()
        if ppid == 0:
            return  # started from outside this pid namespace (`docker exec`): no parent to watch
        already_orphaned = ppid == 1 and not _init_is_pants()
        if not already_orphaned:
            _parent = ppid
    if already_orphaned:
        stop()
    threading.Thread(target=_watch, name="sandbox-guard", daemon=True).start()


def _init_is_pants() -> bool:
    """Whether pid 1 is Pants itself (Pants as a container's entry point), so a parent pid of 1 is
    Pants and not init adopting an orphan. Unreadable: assume it is, and do not stop."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            return b"pants" in f.read(4096)
    except OSError:
        return True


def orphaned() -> bool:
    """True once the process that was our parent at start() has died."""
    return _parent is not None and os.getppid() != _parent


def check() -> None:
    """Call in every long loop: stops the script at once if its parent has died."""
    if orphaned():
        stop()


def track(pid: int) -> None:
    """A child process to kill with the script (for a child that outlives a killed parent)."""
    with _lock:
        _children.add(pid)


def untrack(pid: int) -> None:
    with _lock:
        _children.discard(pid)


def stop() -> None:
    """Kill what this script started, then exit without cleanup (nobody is waiting for the result)."""
    try:
        sys.stderr.write("error: the process that started this step (Pants) is gone; stopping the step\n")
        sys.stderr.flush()
    except Exception:  # the pipe to a dead Pants is broken; there is no one to tell
        pass
    with _lock:
        children = list(_children)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if os.getpgrp() == os.getpid():
        # We lead our process group (Pants' setsid): it holds only this step, so take the
        # grandchildren (e.g. what `occlum new` started) with us. This kills us too.
        try:
            os.killpg(os.getpid(), signal.SIGKILL)
        except OSError:
            pass
    os._exit(EXIT_ORPHANED)


def _watch() -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if orphaned():
            stop()
