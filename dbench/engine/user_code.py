"""The user's own code run by ``evaluate``: importing ``--encoder MODULE:ATTR``, building it,
calling it. Whatever that code does — raise (with or without a message), need constructor
arguments, fail at import time, call ``sys.exit`` — is one line saying where, never a
traceback and never an exit that looks like success.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from dbench.errors import UserError


def import_encoder(target: str) -> Any:
    """``MODULE:ATTR`` -> the encoder (a zero-argument factory is called)."""
    import importlib
    import sys

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"--encoder expects MODULE:ATTR; got {target!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current folder, as `python -m` would
    obj: Any = user_code(f"cannot import {module_name!r}", importlib.import_module, module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    import torch

    if isinstance(obj, torch.nn.Module) or callable(getattr(obj, "encode", None)):
        return obj
    if callable(obj):
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            return obj
        required = [
            p.name
            for p in params
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if inspect.isclass(obj) and required:
            raise UserError(
                f"{target} is a class whose constructor needs {', '.join(required)}; give a "
                "class or factory that takes no arguments"
            )
        if not required or inspect.isclass(obj):  # a factory (or a class): build the encoder
            return user_code(f"{target}() failed", obj)
        return obj
    raise UserError(f"{target} is neither an encoder nor a factory of one")


def user_code(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` where ``fn`` is the user's code: whatever it raises (``sys.exit`` too,
    which must not end dbench with a success and no record) is one line saying where."""
    try:
        return fn(*args)
    except UserError:
        raise
    except (Exception, SystemExit) as exc:
        if isinstance(exc, SystemExit):
            why = f"it called sys.exit({exc.code!r})"
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            why = f"{type(exc).__name__}: {first}".rstrip(": ")
        raise UserError(f"{where}: {why}") from None
