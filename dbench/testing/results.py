"""Check results and the small runner that produces them.

Every contract check is a named step that passes, fails with a one-line reason, or is skipped
(not applicable to this component, or a step it needs did not pass). Steps never raise: a
component that crashes fails the step it crashed in, and the steps that need it are skipped,
so one bug shows up once, not as a cascade.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one contract check of one component.

    ``component`` reads like ``"dataset blobs"``; ``name`` is the check (``"sim"``,
    ``"save_load"``). ``passed`` is False only for a failure: a skipped check (``skipped``)
    did not find anything wrong. ``str(result)`` is one printable line.
    """

    component: str
    name: str
    passed: bool
    message: str = ""
    skipped: bool = False

    @property
    def status(self) -> str:
        """``"PASS"``, ``"FAIL"`` or ``"SKIP"``."""
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def __str__(self) -> str:
        line = f"{self.status}  {self.component}: {self.name}"
        return f"{line} - {self.message}" if self.message else line


class NotApplicable(Exception):
    """Raised by a check step that does not apply to the component (it is then skipped)."""


def expect(condition: Any, message: str) -> None:
    """Fail the current check with ``message`` unless ``condition`` holds (survives ``-O``)."""
    if not condition:
        raise AssertionError(message)


def describe_exception(exc: BaseException) -> str:
    """``"raised KeyError: 'x' (at dbench/models/vae.py:12)"``: the exception and where."""
    text = str(exc).strip().splitlines()
    line = f"raised {type(exc).__name__}" + (f": {text[0]}" if text else "")
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = Path(frames[-1].filename)
        line += f" (at {'/'.join(where.parts[-3:])}:{frames[-1].lineno})"
    return line


class Suite:
    """Runs the check steps of one component and collects their results in order."""

    def __init__(self, component: str):
        self.component = component
        self.results: list[CheckResult] = []
        self._passed: set[str] = set()

    def check(
        self, name: str, step: Callable[[], str | None], *, needs: Sequence[str] = ()
    ) -> bool:
        """Run ``step`` as check ``name``; True when it passed.

        The step signals failure by raising (``AssertionError`` carries the reason; any other
        exception is reported with its type and location), skips itself by raising
        :class:`NotApplicable`, and may return a short note for the passing line. It is
        skipped without running unless every check in ``needs`` passed.
        """
        missing = [n for n in needs if n not in self._passed]
        if missing:
            self._add(name, True, f"needs {', '.join(missing)}", skipped=True)
            return False
        try:
            note = step()
        except NotApplicable as exc:
            self._add(name, True, str(exc), skipped=True)
            return False
        except AssertionError as exc:
            self._add(name, False, str(exc) or describe_exception(exc))
            return False
        except Exception as exc:
            self._add(name, False, describe_exception(exc))
            return False
        self._passed.add(name)
        self._add(name, True, note or "")
        return True

    def _add(self, name: str, passed: bool, message: str, skipped: bool = False) -> None:
        self.results.append(CheckResult(self.component, name, passed, message, skipped))


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def format_results(results: Iterable[CheckResult]) -> str:
    """One line per check, then a summary line (what ``dbench check`` prints)."""
    results = list(results)
    lines = [str(r) for r in results]
    failed = len(failures(results))
    skipped = sum(r.skipped for r in results)
    passed = len(results) - failed - skipped
    lines.append(f"{passed} passed, {failed} failed, {skipped} skipped")
    return "\n".join(lines)


def assert_passed(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Raise an ``AssertionError`` listing every failed check (component and check named);
    return the results unchanged when none failed."""
    results = list(results)
    failed = failures(results)
    if failed:
        components = sorted({r.component for r in failed})
        head = f"{', '.join(components)}: {len(failed)} of {len(results)} contract checks failed"
        raise AssertionError("\n".join([head, *(f"  {r}" for r in failed)]))
    return results
