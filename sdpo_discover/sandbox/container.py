"""The docker executor: each attempt runs in its own hardened, single-use container from a warm pool.

Containers are started ahead of time (`sleep`), each with the runner already started inside it
(one `docker exec`, waiting for its request on stdin); each serves exactly one attempt, then is
destroyed and replaced in the background: an attempt pays for sending its request and running its
tests, not for a container or an interpreter start, and nothing it leaves behind reaches the next.

What each container enforces (each has a test in tests/test_sandbox_hostile.py):
- no network (network mode "none": only a loopback interface);
- read-only root filesystem; the only writable places are tmpfs mounts (/work, /tmp), size-capped,
  mounted nosuid,nodev,noexec, and gone with the container;
- a non-root user (uid 1000), all capabilities dropped, no-new-privileges;
- cgroup limits: pids (fork bombs), memory with no swap, one CPU;
- a clean environment: nothing of the host's environment variables goes in;
- the runner's per-test limits (runner.py): the time limit (the program's own time, not time spent
  waiting for a CPU) and a hard wall-clock limit, each with a process-group kill, address space,
  output size, and tests at nice 19 so that the runner comes first; no process outlives its test,
  and the container outlives no attempt.
- a container that this process fails to remove (kill -9 of the tool) removes itself after
  `max_lifetime_s` (auto-remove when its `sleep` ends), and the next executor reaps the stale ones.
What it does not protect against: kernel exploits that escape a container (use gVisor or a VM for
that); and whoever can reach the Docker socket is root on the host, so never expose it to attempts
(they never see it: it is not mounted).
"""

from __future__ import annotations

import atexit
import os
import queue
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .base import (DONE_LINE, Executor, RunOutcome, RunRequest, SandboxError, outer_timeout_s, parse_runner_output,
                   runner_source)
from .image import configured_image

LABEL = "sdpo-discover.sandbox"
OWNER_LABEL = "sdpo-discover.owner"
EXECUTOR_LABEL = "sdpo-discover.executor"  # one per DockerExecutor: close() sweeps by it
# Overridable for users with their own image (same contract: see image.py).
DEFAULT_IMAGE = configured_image()
RUNNER_OVERHEAD_MB = 192  # the runner itself and the page cache of tmpfs files, on top of one test's limit


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 :].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return None


def _owner_id() -> str:
    # pid plus its start time: a recycled pid does not make a dead owner look alive.
    return f"{socket.gethostname()}:{os.getpid()}:{_proc_start(os.getpid())}"


def _owner_alive(owner: str) -> bool:
    try:
        host, pid, start = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another machine's daemon client: not ours to judge
    return _proc_start(int(pid)) == start


def docker_client(timeout: int = 60) -> Any:
    try:
        import docker
    except ImportError:
        raise SandboxError("the docker Python package is missing: pip install docker") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        raise SandboxError(
            f"the Docker daemon does not answer ({e}). Start it (as root: `dockerd &`, or "
            "`systemctl start docker`), or use --sandbox local"
        ) from None
    return client


def reap_stale(client: Any) -> int:
    """Remove sandbox containers whose owning process on this host is gone (e.g. it was kill -9'd)."""
    n = 0
    for c in client.api.containers(all=True, filters={"label": LABEL}):
        owner = (c.get("Labels") or {}).get(OWNER_LABEL, "")
        if not _owner_alive(owner):
            try:
                client.api.remove_container(c["Id"], force=True)
                n += 1
            except Exception:
                pass
    return n


def _already_gone(e: Exception) -> bool:
    """A remove that failed because the container is gone or being removed (auto-remove) already."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    return status == 404 or (status == 409 and "in progress" in str(e))


@dataclass
class _Warm:
    """A pre-started container whose runner is already up and waiting for its request."""

    cid: str
    exec_id: str
    sock: Any


class DockerExecutor(Executor):
    name = "docker"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        pool_size: int = 2,
        memory_mb: int = 1024,
        cpus: float = 1.0,
        pids_limit: int = 128,
        work_tmpfs_mb: int = 256,
        max_lifetime_s: int = 6 * 3600,
    ) -> None:
        self.client = docker_client()
        self.api = self.client.api
        try:
            self.api.inspect_image(image)
        except Exception:
            raise SandboxError(f"the sandbox image {image} does not exist: build it with `sdpo-discover sandbox build`") from None
        self.image, self.pool_size, self.memory_mb, self.cpus = image, max(1, pool_size), memory_mb, cpus
        self.pids_limit, self.work_tmpfs_mb, self.max_lifetime_s = pids_limit, work_tmpfs_mb, max_lifetime_s
        self.owner = _owner_id()
        self.id = uuid.uuid4().hex[:12]
        self._runner_cmd = ["python3", "-I", "-S", "-c", runner_source()]
        self._ready: queue.Queue[_Warm] = queue.Queue()
        self._live: set[str] = set()  # every container we created and have not yet removed
        self._lock = threading.Lock()
        self._closed = False
        self._bg = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sdpo-pool")
        self._errors: queue.Queue[str] = queue.Queue()
        reap_stale(self.client)
        atexit.register(self.close)
        self._pending = 0  # background refills and discards not yet finished
        for _ in range(self.pool_size):
            self._spawn(self._refill)

    # -- containers ------------------------------------------------------------------------------

    def _spawn(self, fn: Any, *args: Any) -> None:
        """Run fn in the background, counted so that wait_ready can wait for quiet."""
        def task() -> None:
            try:
                fn(*args)
            finally:
                with self._lock:
                    self._pending -= 1

        with self._lock:
            self._pending += 1
        try:
            self._bg.submit(task)
        except RuntimeError:  # shut down (close() ran): nothing more to start
            with self._lock:
                self._pending -= 1
            if fn == self._discard:
                fn(*args)

    def _create(self, memory_mb: int) -> str:
        hc = self.api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={
                "/work": f"rw,nosuid,nodev,noexec,size={self.work_tmpfs_mb}m,uid=1000,gid=1000,mode=0755",
                "/tmp": "rw,nosuid,nodev,noexec,size=64m,mode=1777",
            },
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=self.pids_limit,
            mem_limit=f"{memory_mb}m",
            memswap_limit=f"{memory_mb}m",
            nano_cpus=int(self.cpus * 1e9),
            auto_remove=True,
            ipc_mode="private",
        )
        c = self.api.create_container(
            self.image, command=["sleep", str(self.max_lifetime_s)], user="1000:1000", working_dir="/work",
            labels={LABEL: "1", OWNER_LABEL: self.owner, EXECUTOR_LABEL: self.id}, host_config=hc, environment={},
            name=f"sdpo-sandbox-{uuid.uuid4().hex[:12]}", network_disabled=True,
        )
        cid = c["Id"]
        with self._lock:
            self._live.add(cid)
        self.api.start(cid)
        return cid

    def _refill(self) -> None:
        if self._closed:
            return
        try:
            warm = self._start_runner(self._create(self.memory_mb))
        except Exception as e:  # surfaced to the next run() that waits for a container
            self._errors.put(f"cannot start a sandbox container: {e}")
            return
        if self._closed:
            self._discard(warm)
        else:
            self._ready.put(warm)

    def _start_runner(self, cid: str) -> _Warm:
        """Start the runner in the container now; it waits for its request on stdin. Its start-up
        (an interpreter and its imports) is paid here, in the background, not by the attempt."""
        try:
            ex = self.api.exec_create(cid, self._runner_cmd, stdin=True, stdout=True, stderr=True,
                                      user="1000:1000", workdir="/work", environment={})
            sock = self.api.exec_start(ex["Id"], socket=True)
        except Exception as e:
            self._destroy(cid)
            raise SandboxError(f"docker exec failed: {e}") from None
        return _Warm(cid, ex["Id"], sock)

    def _discard(self, warm: _Warm) -> None:
        try:
            warm.sock.close()
        except Exception:
            pass
        self._destroy(warm.cid)

    def _destroy(self, cid: str, tries: int = 3) -> bool:
        """Remove a container; True once it is gone. A failure that is not "already gone" (the daemon
        busy past the client's timeout, a dropped connection: seen under a loaded CI) is retried, and
        a container that still cannot be removed stays in `_live` for close() to try again: forgetting
        it would leave it running for `max_lifetime_s`."""
        for i in range(tries):
            try:
                self.api.remove_container(cid, force=True)
                break
            except Exception as e:
                if _already_gone(e):
                    break
                if i == tries - 1:
                    return False
                time.sleep(0.5 * (i + 1))
        with self._lock:
            self._live.discard(cid)
        return True

    def _take(self, timeout: float = 120.0) -> _Warm:
        end = time.monotonic() + timeout
        while True:
            try:
                return self._ready.get(timeout=0.2)
            except queue.Empty:
                pass
            try:
                err = self._errors.get_nowait()
                self._spawn(self._refill)  # keep the pool at size; the error may be transient
                raise SandboxError(err)
            except queue.Empty:
                pass
            if time.monotonic() > end:
                raise SandboxError(f"no sandbox container became ready within {timeout:.0f} s")

    # -- running ---------------------------------------------------------------------------------

    def run(self, request: RunRequest) -> RunOutcome:
        if self._closed:
            raise SandboxError("the docker executor is closed")
        need = request.memory_limit_mb + RUNNER_OVERHEAD_MB
        start = time.monotonic()
        if need > self.memory_mb:  # this problem needs a bigger container than the pool's: a cold one
            try:
                warm = self._start_runner(self._create(need))
            except SandboxError:
                raise
            except Exception as e:
                raise SandboxError(f"cannot start a sandbox container: {e}") from None
            refill_now = None
        else:
            warm = self._take()
            # Starting a container costs dockerd, containerd and runc about as much CPU as a whole attempt
            # (on 2 cores it slowed the attempt by 40-60%). So the replacement starts right away only
            # when the pool ran dry (the next attempt would wait for it), else when this attempt ends.
            refill_now = self._ready.qsize() == 0
            if refill_now:
                self._spawn(self._refill)
        try:
            # Inside its own container (its own CPU cgroup) a test competes only with its runner: at nice
            # 19 it loses nothing to the world outside and cannot starve the runner (a fork bomb would:
            # 127 busy processes against one, and the runner must run to kill them).
            payload = request.to_runner_json(workdir="/work", nice=19)
            outer = outer_timeout_s(request)
            stdout, stderr, _ = self._talk(warm, payload, outer)
        finally:
            if refill_now is False:
                self._spawn(self._refill)
            self._spawn(self._discard, warm)  # single use: never reused, whatever happened
        out = parse_runner_output(stdout, stderr)
        out.elapsed_s = time.monotonic() - start
        if not out.started:  # only then is the exit code worth an API round trip
            raise SandboxError(f"the runner did not start in the container (exit {self._exit_code(warm)}): "
                               f"{out.runner_stderr[-800:]}")
        return out

    def _talk(self, warm: _Warm, payload: bytes, timeout: float) -> tuple[bytes, bytes, int | None]:
        """Send the request on the runner's stdin, half-close, and read the multiplexed
        stdout/stderr stream (`docker exec -i` through the API) until the runner says it is done or
        exits. Not waiting for the exit after "done" saves the interpreter's teardown and docker's exec
        bookkeeping (20-50 ms); the container is destroyed anyway."""
        raw = getattr(warm.sock, "_sock", warm.sock)
        out, err = bytearray(), bytearray()
        try:
            raw.settimeout(timeout)
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)
            buf = bytearray()
            done = False
            while not done:
                chunk = raw.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 8:  # frames: 1 byte stream id, 3 zero bytes, 4 bytes big-endian length
                    stream, size = buf[0], struct.unpack(">I", bytes(buf[4:8]))[0]
                    if len(buf) < 8 + size:
                        break
                    (out if stream == 1 else err).extend(buf[8 : 8 + size])
                    del buf[: 8 + size]
                # The runner's last line. Records are JSON objects on one line each, so a program's
                # output (a string inside a record) can never form this line.
                done = out.endswith(DONE_LINE) and (len(out) == len(DONE_LINE) or out[-len(DONE_LINE) - 1] == 10)
        except TimeoutError:
            raise SandboxError(f"the runner did not finish within {timeout:.0f} s") from None
        except OSError as e:
            raise SandboxError(f"lost the connection to the container: {e}") from None
        return bytes(out), bytes(err), None

    def _exit_code(self, warm: _Warm) -> int | None:
        try:
            return self.api.exec_inspect(warm.exec_id).get("ExitCode")
        except Exception:
            return None

    def close(self) -> None:
        """Remove every container this executor created. Called on exit, Ctrl-C and errors."""
        if self._closed:
            return
        self._closed = True
        self._bg.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                warm = self._ready.get_nowait()
            except queue.Empty:
                break
            try:
                warm.sock.close()
            except Exception:
                pass
        with self._lock:
            live = list(self._live)
        for cid in live:
            self._destroy(cid)
        # Also whatever carries this executor's label but is not in `_live`: a create call that failed
        # on the client's side (a timeout) after the daemon had made the container.
        try:
            left = [c["Id"] for c in self.api.containers(all=True, filters={"label": f"{EXECUTOR_LABEL}={self.id}"})]
        except Exception:
            left = []
        for cid in left:
            self._destroy(cid)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Block until the whole pool is warm and no container is still being started or removed
        (e.g. while the model generates the next batch), so the next attempts get the CPU."""
        end = time.monotonic() + timeout
        while not self._quiet() and time.monotonic() < end and not self._closed:
            time.sleep(0.01)
        return self._quiet()

    def _quiet(self) -> bool:
        with self._lock:
            return self._ready.qsize() >= self.pool_size and self._pending == 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"ready": self._ready.qsize(), "live": len(self._live), "pool_size": self.pool_size}


def list_sandbox_containers() -> list[dict[str, Any]]:
    client = docker_client()
    return [
        {"id": c["Id"][:12], "name": (c.get("Names") or ["?"])[0].lstrip("/"), "state": c.get("State"),
         "owner": (c.get("Labels") or {}).get(OWNER_LABEL, ""),
         "stale": not _owner_alive((c.get("Labels") or {}).get(OWNER_LABEL, ""))}
        for c in client.api.containers(all=True, filters={"label": LABEL})
    ]


def remove_all_sandbox_containers(only_stale: bool = True) -> int:
    client = docker_client()
    if only_stale:
        return reap_stale(client)
    n = 0
    for c in client.api.containers(all=True, filters={"label": LABEL}):
        try:
            client.api.remove_container(c["Id"], force=True)
            n += 1
        except Exception:
            pass
    return n


__all__ = ["DockerExecutor", "DEFAULT_IMAGE", "LABEL", "reap_stale", "docker_client"]
