"""The local worker is woken by events, not ticks: a job queued by another process (a byte in the state folder's
FIFO), one of its attempts ending, and a job's process exiting (a pidfd on Linux). Each test waits with a timeout far
beyond any tick, so that it fails (rather than passes slowly) when the wake-up is lost."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from pathlib import Path

from compute_on_aws.backends.local.processes import ExitWaiter
from compute_on_aws.backends.local.store import Store, Wakeup

NEVER = 3600.0  # a wait that only an event ends


def waited(wait: threading.Thread) -> bool:
    wait.join(timeout=30)
    return not wait.is_alive()


def test_a_job_queued_by_another_process_wakes_the_worker(tmp_path: Path) -> None:
    store = Store(tmp_path)
    wakeup = Wakeup(store.wake_path)
    assert stat.S_ISFIFO(store.wake_path.stat().st_mode)
    assert stat.S_IMODE(store.wake_path.stat().st_mode) == 0o600
    wait = threading.Thread(target=wakeup.wait, args=(NEVER,), daemon=True)
    wait.start()
    # What `queue` does once its transaction committed, from a process of its own.
    code = (
        "from pathlib import Path; from compute_on_aws.backends.local.store import Store; "
        f"Store(Path({str(tmp_path)!r})).wake_workers()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert waited(wait), "the worker slept through a job queued by another process"
    wakeup.close()


def test_a_poke_before_the_wait_is_not_lost_and_many_pokes_wake_once(tmp_path: Path) -> None:
    wakeup = Wakeup(Store(tmp_path).wake_path)
    for _ in range(100_000):  # more than the FIFO holds: the writes that do not fit are dropped, never blocking
        wakeup.poke()
    wait = threading.Thread(target=wakeup.wait, args=(NEVER,), daemon=True)
    wait.start()
    assert waited(wait)
    # Drained: the next wait sleeps until its timeout.
    again = threading.Thread(target=wakeup.wait, args=(NEVER,), daemon=True)
    again.start()
    again.join(timeout=0.5)
    assert again.is_alive()
    wakeup.poke()
    assert waited(again)
    wakeup.close()


def test_with_no_worker_waking_is_nothing_to_do(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.wake_workers()  # no FIFO yet
    Wakeup(store.wake_path).close()
    store.wake_workers()  # a FIFO nobody reads
    assert stat.S_ISFIFO(store.wake_path.stat().st_mode)


def test_a_file_where_the_fifo_goes_is_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.wake_path.write_text("left over")
    wakeup = Wakeup(store.wake_path)
    assert stat.S_ISFIFO(store.wake_path.stat().st_mode)
    wakeup.close()


def test_a_process_exit_ends_the_wait_at_once(tmp_path: Path) -> None:
    process = subprocess.Popen(["sleep", "0.2"])
    exited = ExitWaiter(process)
    wait = threading.Thread(target=exited.wait, args=(NEVER,), daemon=True)
    wait.start()
    assert waited(wait), "the exit of the job's process did not end the wait"
    assert process.poll() == 0
    exited.close()


def test_a_worker_on_a_new_state_folder_listens_for_wake_ups(tmp_path: Path) -> None:
    state = tmp_path / "new-state"  # not there yet: the worker makes it, then its FIFO
    worker = subprocess.Popen(
        [sys.executable, "-m", "compute_on_aws", "--state-dir", str(state), "worker", "--exit-when-idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            if (state / "wake").exists() or worker.poll() is not None:
                break
            threading.Event().wait(0.01)
        assert stat.S_ISFIFO((state / "wake").stat().st_mode)
    finally:
        worker.wait(timeout=30)
