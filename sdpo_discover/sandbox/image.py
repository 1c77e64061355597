"""The sandbox image: how to build it, and whether it is there.

The image's contract (what the docker executor relies on; an image of your own given through
SDPO_DISCOVER_IMAGE must keep it too):

- a minimal Debian bookworm with ``/usr/bin/python3`` (Debian's python3, the standard library
  only: no pip, no third-party packages);
- a non-root user ``sandbox`` with uid 1000 and gid 1000 (entries in /etc/passwd and /etc/group,
  home /work, no login shell, no password);
- an empty directory ``/work`` owned by 1000:1000 (the executor mounts a tmpfs over it);
- ``sleep`` from coreutils (the executor keeps warm containers alive with it);
- no setuid or setgid file or directory anywhere in the root filesystem;
- no apt lists or caches, no docs, man pages, info pages or translations (kept small);
- image config: ``USER 1000:1000``, ``WORKDIR /work``,
  ``ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1``,
  ``CMD ["sleep", "infinity"]``.

Nothing of this project is baked in: the executor passes the test runner at exec time
(``python3 -I -S -c <runner>``), so the image never needs a rebuild when our code changes. A change
of this recipe bumps the tag in ``IMAGE``.

Two ways to build it (``build_image``):

- ``debootstrap`` (offline-friendly: needs only a Debian mirror, root and debootstrap):
  debootstrap --variant=minbase --include=python3 into a temporary folder, post-process it as the
  contract says, then stream ``tar`` of it into ``docker import``. No registry is involved.
- ``dockerfile`` (for users who can pull from a registry): ``docker build`` of the Dockerfile
  beside this module (FROM debian:bookworm-slim; SDPO_DISCOVER_BASE_IMAGE overrides the base).

Run as a module: ``python3 -m sdpo_discover.sandbox.image [--method auto|debootstrap|dockerfile] [--force]``.
Importing this module imports neither docker nor anything heavy.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

IMAGE = "sdpo-discover-sandbox:1"


def configured_image() -> str:
    """The image the docker sandbox uses: $SDPO_DISCOVER_IMAGE (a user's own, same contract), else IMAGE."""
    return os.environ.get("SDPO_DISCOVER_IMAGE") or IMAGE

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DOCKERFILE = Path(__file__).with_name("Dockerfile")
SANDBOX_UID = SANDBOX_GID = 1000
IMAGE_CHANGES = [
    "USER 1000:1000",
    "WORKDIR /work",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1",
    'CMD ["sleep", "infinity"]',
    "LABEL org.opencontainers.image.title=sdpo-discover-sandbox sdpo-discover.build=debootstrap",
]
# Where the temporary root filesystem goes (on a disk, not a tmpfs: it is ~150 MB before trimming),
# and where debootstrap keeps the .debs it downloaded so that a rebuild downloads nothing.
BUILD_DIR_ENV = "SDPO_DISCOVER_BUILD_DIR"
DEB_CACHE = Path("/var/cache/sdpo-discover/debootstrap")
DEBOOTSTRAP_TIMEOUT_S = 30 * 60
START_DOCKERD_HINT = (
    "start it as root with `nohup dockerd > /var/log/sdpo-dockerd.log 2>&1 &` (or `systemctl start docker`), "
    "or run scripts/setup, which installs docker.io and starts it"
)

# Removed from the root filesystem after debootstrap (globs relative to the root).
_TRIM = [
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/log/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "usr/share/linda/*",
    "usr/share/bug/*",
    "usr/share/common-licenses/*",  # the licences ship as /usr/share/doc/*/copyright too: both are docs
    "dev/*",  # docker gives every container its own /dev
    "run/*",
    "tmp/*",
    "var/tmp/*",
    "root/.*",
]


class SandboxImageError(RuntimeError):
    """The sandbox image could not be built or inspected; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# docker


def _client(timeout: int = 60) -> Any:
    try:
        import docker
    except ImportError:
        raise SandboxImageError("the docker Python package is missing: pip install 'docker>=7'") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        raise SandboxImageError(f"the Docker daemon does not answer ({e}): {START_DOCKERD_HINT}") from None
    return client


def image_exists(tag: str = IMAGE) -> bool:
    """True when the daemon answers and has the image; False otherwise (never raises)."""
    try:
        client = _client(timeout=10)
    except SandboxImageError:
        return False
    try:
        client.api.inspect_image(tag)
        return True
    except Exception:
        return False


def _split_tag(tag: str) -> tuple[str, str]:
    repo, sep, t = tag.rpartition(":")
    if not sep or "/" in t:  # no tag, or the colon was a registry's port
        return tag, "latest"
    return repo, t


def _image_id(client: Any, tag: str) -> str | None:
    try:
        return client.api.inspect_image(tag)["Id"]
    except Exception:
        return None


def _drop_replaced(client: Any, old_id: str | None, tag: str, log: Callable[[str], None]) -> None:
    """Remove the image that `tag` named before a rebuild, when nothing else uses it."""
    if not old_id or old_id == _image_id(client, tag):
        return
    try:
        client.api.remove_image(old_id)
        log(f"removed the previous image {old_id[:19]}")
    except Exception as e:  # a container still uses it, or another tag names it: leave it
        log(f"kept the previous image {old_id[:19]} ({str(e)[:120]})")


def _smoke_test(client: Any, tag: str, log: Callable[[str], None]) -> None:
    """Run the new image as the executor will (no network, read-only, uid 1000) and check the contract."""
    check = (
        "import os, sys, shutil; "
        "st = os.stat('/work'); "
        "assert os.getuid() == 1000 and os.getgid() == 1000, (os.getuid(), os.getgid()); "
        "assert (st.st_uid, st.st_gid) == (1000, 1000), (st.st_uid, st.st_gid); "
        "assert shutil.which('sleep'), 'no sleep'; "
        "print(sys.executable, sys.version.split()[0])"
    )
    try:
        out = client.containers.run(
            tag, ["python3", "-I", "-c", check], remove=True, network_mode="none", read_only=True,
            user="1000:1000", cap_drop=["ALL"], security_opt=["no-new-privileges"], stdout=True, stderr=True,
        )
    except Exception as e:
        raise SandboxImageError(f"the image {tag} was built but fails its smoke test: {e}") from None
    log(f"smoke test ok: {out.decode(errors='replace').strip()} as uid 1000, /work owned by 1000")


# ---------------------------------------------------------------------------------------------
# the apt mirror


_DEBIAN_SUITE = re.compile(r"^(bookworm|bullseye|trixie|forky|sid|stable|testing|unstable|oldstable)(-updates|-backports)?$")


def _mirror_from_entries(entries: list[tuple[str, str, list[str]]]) -> str | None:
    """entries: (type, uri, suites). The first Debian (not security) archive that has bookworm, else any."""
    good = [
        (uri, suites) for typ, uri, suites in entries
        if typ == "deb" and re.match(r"^(https?|ftp|file)://", uri)
        and any(_DEBIAN_SUITE.match(s) for s in suites) and "security" not in uri
    ]
    for uri, suites in good:
        if SUITE in suites:
            return uri.rstrip("/")
    return good[0][0].rstrip("/") if good else None


def _parse_one_line(text: str) -> list[tuple[str, str, list[str]]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...]
        parts = line.split()
        if len(parts) >= 3:
            out.append((parts[0], parts[1], [parts[2]]))
    return out


def _parse_deb822(text: str) -> list[tuple[str, str, list[str]]]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for typ in fields.get("types", "").split():
            for uri in fields.get("uris", "").split():
                out.append((typ, uri, fields.get("suites", "").split()))
    return out


def default_mirror(etc: str | os.PathLike[str] = "/etc/apt") -> str:
    """The Debian mirror apt uses on this machine, else deb.debian.org."""
    base = Path(etc)
    entries: list[tuple[str, str, list[str]]] = []
    files = [base / "sources.list"]
    d = base / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        entries += _parse_deb822(text) if f.suffix == ".sources" else _parse_one_line(text)
    return _mirror_from_entries(entries) or DEFAULT_MIRROR


# ---------------------------------------------------------------------------------------------
# debootstrap


def _find_debootstrap() -> str | None:
    return shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.access(p, os.X_OK)), None
    )


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].replace("\\040", " ")
                if mp == prefix[:-1] or mp.startswith(prefix):
                    found.append(mp)
    except OSError:
        pass
    return sorted(found, key=len, reverse=True)  # deepest first


def _remove_tree(path: Path, log: Callable[[str], None]) -> None:
    """rm -rf a build folder, after unmounting whatever debootstrap may have left mounted in it."""
    if not path.exists():
        return
    for mp in _mounts_under(path):
        subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:  # never rm -rf through a mount (a bind of the host's /dev or /proc)
        log(f"WARNING: not removing {path}: still mounted there: {', '.join(left)}")
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log(f"WARNING: could not remove all of {path}")


def _run_streaming(cmd: list[str], log: Callable[[str], None], timeout_s: float, prefix: str = "") -> tuple[int, list[str]]:
    """Run cmd, passing each output line to log; kill its process group after timeout_s."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", start_new_session=True)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log(prefix + line)
                tail = (tail + [line])[-30:]
        rc = proc.wait()
    except BaseException:
        kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise SandboxImageError(f"{cmd[0]} did not finish within {timeout_s / 60:.0f} minutes (the mirror is slow or unreachable?)")
    return rc, tail


def _strip_setid(root: Path) -> int:
    """Clear the setuid and setgid bits of every file and directory under root (symlinks are skipped)."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(p, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
                n += 1
    return n


def _trim(root: Path) -> None:
    for pattern in _TRIM:
        for p in root.glob(pattern):
            if p.name in (".", ".."):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    for d in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):  # apt expects them
        (root / d).mkdir(parents=True, exist_ok=True)


def _add_user(root: Path) -> None:
    def append(rel: str, line: str, key: str) -> None:
        f = root / rel
        text = f.read_text() if f.exists() else ""
        if any(row.split(":")[0] == key or (row.split(":")[2:3] == [str(SANDBOX_UID)] and rel != "etc/shadow")
               for row in text.splitlines() if row):
            raise SandboxImageError(f"/{rel} of the new root filesystem already has a {key!r} or id {SANDBOX_UID} entry")
        if text and not text.endswith("\n"):
            text += "\n"
        f.write_text(text + line + "\n")

    append("etc/group", f"sandbox:x:{SANDBOX_GID}:", "sandbox")
    append("etc/passwd", f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sdpo-discover sandbox:/work:/usr/sbin/nologin", "sandbox")
    if (root / "etc/shadow").exists():
        append("etc/shadow", "sandbox:*:19000:0:99999:7:::", "sandbox")
    if (root / "etc/gshadow").exists():
        append("etc/gshadow", "sandbox:*::", "sandbox")


def _post_process(root: Path, log: Callable[[str], None]) -> None:
    if not (root / "usr/bin/python3").exists():
        raise SandboxImageError(f"debootstrap finished but {root}/usr/bin/python3 is missing")
    _trim(root)
    _add_user(root)
    work = root / "work"
    work.mkdir(exist_ok=True)
    os.chown(work, SANDBOX_UID, SANDBOX_GID)
    os.chmod(work, 0o755)
    # The host's copies that debootstrap put there: docker provides its own at run time.
    for rel in ("etc/resolv.conf", "etc/hostname"):
        p = root / rel
        if p.is_symlink() or p.exists():
            p.unlink()
        p.write_text("")
    (root / "etc/machine-id").unlink(missing_ok=True)
    n = _strip_setid(root)
    log(f"post-processed the root filesystem: user sandbox (1000:1000), /work, trimmed, setuid/setgid bits cleared on {n} paths")


def _tar_stream(proc: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        yield chunk


def _import_rootfs(root: Path, tag: str, log: Callable[[str], None]) -> None:
    client = _client(timeout=1800)
    old_id = _image_id(client, tag)
    repo, t = _split_tag(tag)
    log(f"docker import of {root} as {tag} ...")
    with tempfile.TemporaryFile() as errf:  # a file, not a pipe: tar's warnings can never block it
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."],
                               stdout=subprocess.PIPE, stderr=errf)
        try:
            result = client.api.import_image(src=_tar_stream(tar), repository=repo, tag=t, changes=IMAGE_CHANGES,
                                             stream_src=True)
        except Exception as e:
            tar.kill()
            raise SandboxImageError(f"docker import failed: {e}") from None
        finally:
            trc = tar.wait()
            errf.seek(0)
            terr = errf.read().decode(errors="replace")
    if trc != 0:  # docker imported a truncated archive: undo the tag
        new_id = _image_id(client, tag)
        try:
            if new_id and new_id != old_id:
                client.api.remove_image(new_id, force=True)
            if old_id:
                client.api.tag(old_id, repo, t)
        except Exception:
            pass
        raise SandboxImageError(f"tar of the root filesystem failed (exit {trc}): {terr.strip()[-500:]}")
    text = result if isinstance(result, str) else str(result)
    if '"error' in text or "errorDetail" in text:
        raise SandboxImageError(f"docker import failed: {text[-500:]}")
    if _image_id(client, tag) is None:
        raise SandboxImageError(f"docker import answered but the image {tag} does not exist: {text[-500:]}")
    _drop_replaced(client, old_id, tag, log)


def _build_debootstrap(tag: str, mirror: str | None, log: Callable[[str], None]) -> None:
    debootstrap = _find_debootstrap()
    if os.geteuid() != 0:
        raise SandboxImageError(
            "building the sandbox image with debootstrap needs root (it chroots and chowns): run it as root "
            "(sudo python3 -m sdpo_discover.sandbox.image, or scripts/setup), or use --method dockerfile "
            "where a registry is reachable"
        )
    if not debootstrap:
        raise SandboxImageError(
            "debootstrap is not installed: `apt-get install -y debootstrap` (Debian/Ubuntu), or use "
            "--method dockerfile where a registry is reachable"
        )
    _client(timeout=10)  # fail before the slow part if the daemon is down
    mirror = mirror or default_mirror()
    base = Path(os.environ.get(BUILD_DIR_ENV) or "/var/tmp")
    base.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="sdpo-sandbox-rootfs-", dir=base))
    root = build / "rootfs"
    try:
        cmd = [debootstrap, "--variant=minbase", "--include=python3"]
        if _has_keyring():  # never silently accept an unsigned archive when we can check it
            cmd.append("--force-check-gpg")
        try:
            DEB_CACHE.mkdir(parents=True, exist_ok=True)
            cmd.append(f"--cache-dir={DEB_CACHE}")
        except OSError:
            pass
        cmd += [SUITE, str(root), mirror]
        log(f"$ {' '.join(cmd)}")
        t0 = time.monotonic()
        rc, tail = _run_streaming(cmd, log, DEBOOTSTRAP_TIMEOUT_S, prefix="debootstrap: ")
        if rc != 0:
            logf = root / "debootstrap/debootstrap.log"
            extra = ""
            if logf.exists():
                extra = "\n" + "\n".join(logf.read_text(errors="replace").splitlines()[-20:])
            raise SandboxImageError(
                f"debootstrap failed (exit {rc}) from the mirror {mirror}: " + " | ".join(tail[-5:]) + extra
                + "\nCheck that the mirror is reachable (pass --mirror URL to use another one)."
            )
        log(f"debootstrap done in {time.monotonic() - t0:.0f} s")
        left = _mounts_under(root)
        if left:
            raise SandboxImageError(f"debootstrap left mounts in the root filesystem: {', '.join(left)}")
        _post_process(root, log)
        _import_rootfs(root, tag, log)
    finally:
        _remove_tree(build, log)


def _has_keyring() -> bool:
    return os.path.exists("/usr/share/keyrings/debian-archive-keyring.gpg") and bool(
        shutil.which("gpgv") or os.path.exists("/usr/bin/gpgv")
    )


# ---------------------------------------------------------------------------------------------
# dockerfile


def _build_dockerfile(tag: str, mirror: str | None, log: Callable[[str], None]) -> None:
    client = _client(timeout=1800)
    if not DOCKERFILE.exists():
        raise SandboxImageError(f"the Dockerfile is missing: {DOCKERFILE}")
    old_id = _image_id(client, tag)
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:  # the context is the Dockerfile alone
        data = DOCKERFILE.read_bytes()
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    ctx.seek(0)
    buildargs = {}
    if os.environ.get("SDPO_DISCOVER_BASE_IMAGE"):
        buildargs["BASE"] = os.environ["SDPO_DISCOVER_BASE_IMAGE"]
    if mirror:
        buildargs["DEBIAN_MIRROR"] = mirror
    log(f"docker build of {DOCKERFILE} as {tag}" + (f" with {buildargs}" if buildargs else ""))
    errors: list[str] = []
    try:
        for chunk in client.api.build(fileobj=ctx, custom_context=True, tag=tag, rm=True, forcerm=True,
                                      decode=True, buildargs=buildargs or None):
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    if line.strip():
                        log(line.rstrip())
            elif "status" in chunk:
                log(" ".join(str(chunk.get(k, "")) for k in ("status", "id", "progress")).strip())
            if "error" in chunk or "errorDetail" in chunk:
                errors.append(str(chunk.get("error") or chunk.get("errorDetail")))
    except Exception as e:
        errors.append(str(e))
    if errors:
        msg = errors[-1].strip()
        hint = ""
        if re.search(r"pull|registry|manifest|dial tcp|lookup|TLS|timeout|not found", msg, re.I):
            hint = (" — the base image could not be pulled: with no registry access, build with "
                    "`--method debootstrap` (as root, after `apt-get install -y debootstrap`), or set "
                    "SDPO_DISCOVER_BASE_IMAGE to a Debian bookworm image you have")
        raise SandboxImageError(f"docker build failed: {msg[-800:]}{hint}")
    if _image_id(client, tag) is None:
        raise SandboxImageError(f"docker build finished but the image {tag} does not exist")
    _drop_replaced(client, old_id, tag, log)


# ---------------------------------------------------------------------------------------------
# the entry points


def build_image(method: str = "auto", tag: str = IMAGE, mirror: str | None = None,
                log: Callable[[str], None] = print) -> str:
    """Build (or rebuild) the sandbox image and return its tag. Raises SandboxImageError.

    method: "debootstrap" (needs root, debootstrap and a Debian mirror; no registry), "dockerfile"
    (needs a registry for the base image), or "auto" (debootstrap when root and available).
    mirror: the Debian mirror for debootstrap (default: the one apt uses here) or, for the
    Dockerfile, a replacement of deb.debian.org.
    """
    if method not in ("auto", "debootstrap", "dockerfile"):
        raise SandboxImageError(f"unknown build method {method!r}: use auto, debootstrap or dockerfile")
    if method == "auto":
        method = "debootstrap" if os.geteuid() == 0 and _find_debootstrap() else "dockerfile"
        why = "root and debootstrap available" if method == "debootstrap" else (
            "not root" if os.geteuid() != 0 else "debootstrap not installed")
        log(f"build method: {method} ({why})")
    t0 = time.monotonic()
    if method == "debootstrap":
        _build_debootstrap(tag, mirror, log)
    else:
        _build_dockerfile(tag, mirror, log)
    client = _client(timeout=120)
    _smoke_test(client, tag, log)
    size = client.api.inspect_image(tag).get("Size", 0)
    log(f"built {tag} ({size / 1e6:.0f} MB) in {time.monotonic() - t0:.0f} s")
    return tag


def docker_status(tag: str | None = None) -> dict[str, Any]:
    """Facts for `sandbox doctor` about the image `tag` (default: the one the docker sandbox will use): never raises."""
    tag = tag or configured_image()
    facts: dict[str, Any] = {
        "docker_sdk": False, "docker_sdk_version": None,
        "daemon": False, "daemon_version": None, "daemon_error": None,
        "image": tag, "image_exists": False, "image_size_mb": None, "image_created": None,
        "debootstrap": None, "root": False, "advice": [],
    }
    advice: list[str] = facts["advice"]
    try:
        facts["root"] = os.geteuid() == 0
    except Exception:
        pass
    try:
        facts["debootstrap"] = _find_debootstrap()
    except Exception:
        pass
    try:
        import docker

        facts["docker_sdk"] = True
        facts["docker_sdk_version"] = getattr(docker, "__version__", None)
    except Exception as e:
        advice.append(f"install the docker Python package: pip install 'docker>=7' ({e})")
        return facts
    client = None
    try:
        client = docker.from_env(timeout=10)
        version = client.version()
        facts["daemon"] = True
        facts["daemon_version"] = version.get("Version")
    except Exception as e:
        facts["daemon_error"] = str(e)[:300]
        if not (shutil.which("dockerd") or os.path.exists("/usr/sbin/dockerd")):
            advice.append("install Docker: `apt-get install -y docker.io` (as root), or run scripts/setup")
        advice.append(f"the Docker daemon does not answer: {START_DOCKERD_HINT}")
    if client is not None and facts["daemon"]:
        try:
            info = client.api.inspect_image(tag)
            facts["image_exists"] = True
            facts["image_size_mb"] = round(info.get("Size", 0) / 1e6, 1)
            facts["image_created"] = info.get("Created")
        except Exception:
            pass
    if not facts["image_exists"]:
        then = "" if facts["daemon"] else "then "
        if facts["root"] and facts["debootstrap"]:
            advice.append(f"{then}build the sandbox image: `sdpo-discover sandbox build` (debootstrap, about a minute)")
        elif not facts["debootstrap"]:
            advice.append(f"{then}build the sandbox image: as root, `apt-get install -y debootstrap` then "
                          "`sdpo-discover sandbox build`; or, with registry access, `sdpo-discover sandbox build --method dockerfile`")
        else:
            advice.append(f"{then}build the sandbox image as root: `sudo sdpo-discover sandbox build`; or, with registry "
                          "access, `sdpo-discover sandbox build --method dockerfile`")
    if facts["daemon"] and facts["image_exists"]:
        advice.append("the docker sandbox is ready")
    try:
        if client is not None:
            client.close()
    except Exception:
        pass
    return facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m sdpo_discover.sandbox.image",
                                 description="Build the sdpo-discover sandbox image (does nothing when it exists, unless --force).")
    ap.add_argument("--method", choices=["auto", "debootstrap", "dockerfile"], default="auto")
    ap.add_argument("--force", action="store_true", help="rebuild even when the image exists")
    ap.add_argument("--tag", default=IMAGE)
    ap.add_argument("--mirror", default=None, help="Debian mirror (default: the one apt uses here)")
    ap.add_argument("--status", action="store_true", help="print docker_status() as JSON and exit")
    args = ap.parse_args(argv)
    try:  # a SIGTERM unwinds like ^C, so that the temporary root filesystem is removed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    except ValueError:  # not the main thread
        pass
    if args.status:
        import json

        print(json.dumps(docker_status(args.tag), indent=2, default=str))
        return 0
    if not args.force and image_exists(args.tag):
        print(f"The sandbox image {args.tag} exists already (use --force to rebuild).")
        return 0
    try:
        build_image(method=args.method, tag=args.tag, mirror=args.mirror, log=lambda s: print(s, flush=True))
    except SandboxImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
