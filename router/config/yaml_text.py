"""PyYAML's safe loader, keeping numbers' source text and timestamps as text.

Kept apart from :mod:`router.config.scalars` so that PyYAML is imported only
when a config file is read (:func:`router.config.scalars.load_yaml`).
"""

from __future__ import annotations

from typing import Any

import yaml

from router.config.scalars import SourcedFloat, SourcedInt, sourced

__all__ = ["load"]


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, keeping numbers' source text and timestamps as text.

    It also notes duplicate keys in ``duplicates``: YAML keeps the last one
    silently (so does LiteLLM), which hides a second ``router_settings:``.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag.endswith(":str"):
                if key_node.value in seen:
                    line = key_node.start_mark.line + 1
                    self.duplicates.append(f"line {line}: duplicate key {key_node.value!r}")
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _yaml_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return sourced(SourcedInt, loader.construct_yaml_int(node), node.value)


def _yaml_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return sourced(SourcedFloat, loader.construct_yaml_float(node), node.value)


def _yaml_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return loader.construct_scalar(node)


# add_constructor copies the table into _Loader first: yaml.SafeLoader is untouched.
_Loader.add_constructor("tag:yaml.org,2002:int", _yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _yaml_timestamp)


def load(text: str, duplicates: list[str] | None = None) -> Any:
    """:func:`router.config.scalars.load_yaml`'s work (see there)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
        if duplicates is not None:
            duplicates.extend(loader.duplicates)
