"""Lazy package attributes: a public name's module is imported on first use (PEP 562)."""

from __future__ import annotations

import importlib
import sys


def attach(package: str, exports: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` map names to submodules."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return list(getattr(sys.modules[package], "__all__", sorted(exports)))

    return __getattr__, __dir__
