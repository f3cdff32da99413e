"""Losses found by name: the YAML configs and ``losses.get`` use this registry."""

from __future__ import annotations

import inspect

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


def names() -> list[str]:
    """Every registered loss name, sorted."""
    return sorted(_REGISTRY)


def parameters(name: str) -> list[str]:
    """The hyperparameter names a loss accepts."""
    return [
        p for p in inspect.signature(_REGISTRY[name].__init__).parameters
        if p not in ("self", "name", "reduction")
    ]


def get(name: str, **params):
    """Build the loss registered as ``name`` with the given hyperparameters.

    Raises ``ValueError`` naming the valid choices for an unknown name or
    parameter.
    """
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
    return {cls.__name__: cls for cls in _REGISTRY.values()}
