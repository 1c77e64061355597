"""Sandboxed execution of attempts: executors (docker, local), the in-sandbox runner, verdicts, grading.

    with make_executor("auto") as ex:
        result = grade_response(problem, response_text, ex)

Importing this package imports neither docker nor torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from .base import Executor, RunOutcome, RunRequest, SandboxError
from .grading import code_from_text, extract_code, grade_code, grade_many, grade_response
from .verdicts import AttemptResult, AttemptStatus, TestVerdict, Verdict

SandboxKind = Literal["auto", "docker", "local"]
log = logging.getLogger(__name__)


def docker_available(image: str | None = None) -> tuple[bool, str]:
    """(usable, why not): the daemon answers and the sandbox image exists."""
    from .container import DEFAULT_IMAGE, docker_client

    try:
        client = docker_client(timeout=10)
    except SandboxError as e:
        return False, str(e)
    try:
        client.api.inspect_image(image or DEFAULT_IMAGE)
    except Exception:
        return False, f"the sandbox image {image or DEFAULT_IMAGE} is missing: build it with `sdpo-discover sandbox build`"
    return True, ""


def make_executor(kind: SandboxKind = "auto", *, pool_size: int = 2, image: str | None = None,
                  warn: Callable[[str], None] | None = None) -> Executor:
    """docker, local, or auto: docker whenever a daemon answers and the image exists (even as root, where
    the local sandbox is at its strongest: docker's is stronger still), else local with a warning that
    says what the local sandbox leaves exposed. An explicit local whose namespaces the kernel refused
    warns too."""
    if kind not in ("auto", "docker", "local"):
        raise ValueError(f"unknown sandbox {kind!r}: use auto, docker or local")
    say = warn or log.warning
    if kind == "auto":
        ok, why = docker_available(image)
        if not ok:
            from .local import LocalExecutor

            ex = LocalExecutor()
            say(f"docker sandbox unavailable ({why}); falling back to the weaker local sandbox: {ex.describe()}. "
                f"It leaves exposed: {'; '.join(ex.exposed())}")
            return ex
        kind = "docker"
    if kind == "docker":
        from .container import DEFAULT_IMAGE, DockerExecutor

        return DockerExecutor(image=image or DEFAULT_IMAGE, pool_size=pool_size)
    from .local import LocalExecutor

    ex = LocalExecutor()
    if ex.refused:
        say(f"the local sandbox runs without the isolation the kernel refused here: {ex.describe()}. "
            f"It leaves exposed: {'; '.join(ex.exposed())}. Use --sandbox docker for more")
    return ex


__all__ = [
    "AttemptResult", "AttemptStatus", "Executor", "RunOutcome", "RunRequest", "SandboxError", "TestVerdict",
    "Verdict", "code_from_text", "docker_available", "extract_code", "grade_code", "grade_many", "grade_response",
    "make_executor",
]
