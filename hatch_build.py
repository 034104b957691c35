"""Build hook: compile the gettext catalogs (reconciler/locale/*/LC_MESSAGES/lwr.po) into
the `.mo` files the runtime reads, for wheels and editable installs alike, so `pip install .`
and `make install` both speak Japanese. The `.mo` files are build output, not in git."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogHook(BuildHookInterface):  # type: ignore[misc]
    """Compiles each `.po` beside itself before the files are collected."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path(self.root, "reconciler", "locale").glob("*/LC_MESSAGES/*.po")):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            with po.with_suffix(".mo").open("wb") as target:
                write_mo(target, catalog)
