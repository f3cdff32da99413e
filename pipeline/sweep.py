"""Hyper-parameter sweeps: one experiment config expanded to one run per combination of values.

    run-experiment CONFIG --sweep loss.params.gamma=0.1,0.3,0.5 --sweep loss.params.delta=0.5,0.6

expands to the Cartesian product of the swept values (the first ``--sweep``
varies slowest). Every member is the config with ``--set`` overrides for its
values, and lives in one sweep folder::

    <output_root>/<name>-sweep/
      sweep.json                    the expansion: keys, values, defaults, members
      splits.json                   one split shared by every member (unless
                                    cross_validation.splits_file is set)
      <name>_gamma-0.1_delta-0.5/   an ordinary run folder per member
      ...

Member names append ``_<key>-<value>`` per swept key to ``experiment.name``
(``<key>`` the last part of the dotted key, or the whole key where two swept
keys share it). Every member's config is validated before anything is
written, so an invalid value fails naming the value. ``sweep.json`` also
records each swept key's *default*, its value without the sweep (the config
file's value, or the loss's default for an unset ``loss.params`` key), which
``sweep-report`` tests the best setting against.

Nothing here imports a pipeline stage: the expansion is config-level, shared
by ``run-experiment`` and ``submit-grid``.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from pipeline.config import ExperimentConfig, load_config
from pipeline.errors import ConfigError

MANIFEST = "sweep.json"
#: Keys a sweep cannot vary: they decide where the members go.
UNSWEEPABLE = ("experiment.name", "experiment.output_root")


@dataclass(frozen=True)
class SweptKey:
    """One ``--sweep KEY=V1,V2,...``: a dotted config key and its values (parsed as YAML)."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepMember:
    """One combination: its values per swept key, the ``--set`` overrides that make it, its config."""

    name: str
    values: dict[str, Any]
    overrides: tuple[str, ...]
    config: ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: the members in run order and the folder holding them."""

    config_path: Path
    keys: tuple[SweptKey, ...]
    defaults: dict[str, Any]
    members: tuple[SweepMember, ...]
    folder: Path

    def manifest(self) -> dict:
        """``sweep.json``'s content."""
        return {
            "config": str(self.config_path),
            "keys": [swept.key for swept in self.keys],
            "values": {swept.key: list(swept.values) for swept in self.keys},
            "defaults": self.defaults,
            "members": [
                {"name": member.name, "values": member.values, "overrides": list(member.overrides)}
                for member in self.members
            ],
        }


def parse_sweep(argument: str) -> SweptKey:
    """``"loss.params.gamma=0.1,0.3"`` -> ``SweptKey("loss.params.gamma", (0.1, 0.3))``.

    Values are split at commas outside brackets, so lists can be swept too:
    ``sampling.patch_shape=[16,32,32],[32,32,32]``.
    """
    key, sep, text = argument.partition("=")
    key = key.strip()
    if not sep or not key or not all(key.split(".")):
        raise ConfigError(f"--sweep {argument!r}: expected dotted.key=value1,value2,...")
    if key in UNSWEEPABLE:
        raise ConfigError(f"--sweep {key}: cannot be swept (it decides where the members are written)")
    values = []
    for part in _split_top_level(text):
        try:
            values.append(yaml.safe_load(part))
        except yaml.YAMLError:
            raise ConfigError(f"--sweep {key}: value {part!r} is not valid YAML") from None
    if not values or any(part.strip() == "" for part in _split_top_level(text)):
        raise ConfigError(f"--sweep {argument!r}: expected comma-separated values, none may be empty")
    if len({json.dumps(value, sort_keys=True) for value in values}) != len(values):
        raise ConfigError(f"--sweep {key}: a value is listed twice")
    return SweptKey(key, tuple(values))


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside ``[...]`` or ``{...}``."""
    parts, depth, current = [], 0, ""
    for character in text:
        if character in "[{":
            depth += 1
        elif character in "]}":
            depth -= 1
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    parts.append(current)
    return parts


def expand_sweep(config_path, sweeps: Sequence[str], overrides: Sequence[str] = ()) -> Sweep:
    """Validate every combination of the swept values; return the sweep without writing anything.

    Args:
        config_path: the experiment config.
        sweeps: ``--sweep`` arguments, ``"dotted.key=v1,v2,..."``.
        overrides: ``--set`` arguments applied to every member, before the swept values.

    Raises:
        ConfigError: a malformed ``--sweep``, a key swept twice, or a combination
            whose config is invalid (naming the swept values that make it so).
    """
    keys = tuple(parse_sweep(argument) for argument in sweeps)
    seen = [swept.key for swept in keys]
    twice = sorted({key for key in seen if seen.count(key) > 1})
    if twice:
        raise ConfigError(f"--sweep {twice[0]}: swept twice; list all its values in one --sweep")
    base = load_config(config_path, overrides)
    folder = base.experiment.output_root / f"{base.experiment.name}-sweep"
    shared = (
        []
        if base.cross_validation.splits_file is not None
        else [f"cross_validation.splits_file={folder / 'splits.json'}"]
    )
    short = _short_names([swept.key for swept in keys])
    members = []
    for combination in itertools.product(*(swept.values for swept in keys)):
        values = dict(zip(seen, combination))
        name = base.experiment.name + "".join(f"_{short[key]}-{_name_part(value)}" for key, value in values.items())
        member_overrides = (
            *overrides,
            *shared,
            f"experiment.output_root={folder}",
            f"experiment.name={name}",
            *(f"{key}={_yaml_flow(value)}" for key, value in values.items()),
        )
        try:
            config = load_config(config_path, member_overrides)
        except ConfigError as error:
            setting = ", ".join(f"{key}={_yaml_flow(value)}" for key, value in values.items())
            raise ConfigError(f"--sweep {setting}: {error}") from None
        members.append(SweepMember(name, values, tuple(member_overrides[len(overrides) :]), config))
    return Sweep(Path(config_path), keys, {key: _default(base, key) for key in seen}, tuple(members), folder)


def check_sweep_folder(sweep: Sweep) -> bool:
    """Whether ``sweep.json`` still has to be written; refuse a folder that holds another sweep."""
    path = sweep.folder / MANIFEST
    if not path.exists():
        return True
    previous = read_manifest(sweep.folder)
    if previous != json.loads(json.dumps(sweep.manifest())):
        raise ConfigError(
            f"{path}: this folder holds another sweep (of {', '.join(previous['keys'])}); "
            "choose another experiment.name for this one"
        )
    return False


def claim_sweep_folder(sweep: Sweep) -> None:
    """Write ``sweep.json``, or check that the folder holds this same sweep."""
    from pipeline.atomic_files import write_atomically

    if check_sweep_folder(sweep):
        write_atomically(sweep.folder / MANIFEST, manifest_text(sweep))


def manifest_text(sweep: Sweep) -> str:
    """``sweep.json`` as written."""
    return json.dumps(sweep.manifest(), indent=1) + "\n"


def read_manifest(folder) -> dict:
    """``<folder>/sweep.json`` as written by :func:`claim_sweep_folder`."""
    from pipeline.errors import DataError

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(path, "missing: not a sweep folder (run-experiment CONFIG --sweep KEY=V1,V2 makes one)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(path, f"not a readable JSON file ({error})") from None
    if not isinstance(manifest, dict) or not {"keys", "defaults", "members"} <= set(manifest):
        raise DataError(path, "not a sweep manifest: expected keys, defaults and members")
    return manifest


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """The last part of each dotted key, or the whole key where two share a last part."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: (tail if last.count(tail) == 1 else key) for key, tail in zip(keys, last)}


def _name_part(value) -> str:
    """A value as it appears in a member name: ``0.5``, ``16x32x32``, ``true``."""
    if isinstance(value, (list, tuple)):
        return "x".join(_name_part(item) for item in value)
    text = _yaml_flow(value)
    return re.sub(r"[^A-Za-z0-9.]+", "", text) or "none"


def _yaml_flow(value) -> str:
    """A value as a one-line YAML scalar or flow list, as ``--set`` parses it."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _default(config: ExperimentConfig, key: str):
    """A swept key's value without the sweep; for an unset loss parameter, the loss's default."""
    node: Any = config.model_dump(mode="json")
    parts = key.split(".")
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            node = None
            break
    if node is None and parts[:2] == ["loss", "params"] and len(parts) == 3:
        return _loss_default(config.loss.name, parts[2])
    return node


def _loss_default(loss_name: str, parameter: str):
    """The default of a loss hyper-parameter, from the loss catalog (no TensorFlow)."""
    from losses import catalog

    return next((p.default for p in catalog.entry(loss_name).parameters if p.name == parameter), None)
