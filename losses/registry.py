"""Losses found by name: the YAML configs and ``losses.get`` use this registry.

The loss modules register their classes when imported; every lookup here
imports them all first (which loads TensorFlow), so the registry is complete
however ``losses`` was imported.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a loss available as ``losses.get(name)``."""

    def decorate(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"loss name {name!r} registered twice")
        _REGISTRY[name] = cls
        cls.registered_name = name
        return cls

    return decorate


@functools.cache
def _register_all() -> None:
    """Import every module of the ``losses`` package (each registers its losses)."""
    package = importlib.import_module("losses")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"losses.{module.name}")


def names() -> list[str]:
    """Every registered loss name, sorted."""
    _register_all()
    return sorted(_REGISTRY)


def parameters(name: str) -> list[str]:
    """The hyperparameter names a loss accepts."""
    _register_all()
    return [p for p in inspect.signature(_REGISTRY[name].__init__).parameters if p not in ("self", "name", "reduction")]


def get(name: str, **params):
    """Build the loss registered as ``name`` with the given hyperparameters.

    Raises ``ValueError`` naming the valid choices for an unknown name or
    parameter.
    """
    _register_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(names())}")
    valid = parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(valid) or '(none)'}"
        )
    return _REGISTRY[name](**params)


def custom_objects() -> dict[str, type]:
    """Class names to classes, for ``keras.models.load_model``."""
    _register_all()
    return {cls.__name__: cls for cls in _REGISTRY.values()}
