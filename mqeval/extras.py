"""Optional dependency groups ('extras' of the package) and the one error that names the extra to install.

Core mqeval evaluates (generate + score); training, reports, understanding suites and COCO from the hub each need an
extra: `pip install 'mqeval[train]'` and so on (pyproject.toml lists them).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from mqeval.errors import UserError


class MissingExtraError(UserError):
    """A feature's optional dependency is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module`, or fail with one line that says which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs `{module.split('.')[0]}`, which the `{extra}` extra installs: "
            f"pip install 'mqeval[{extra}]' ({exc})"
        ) from None
