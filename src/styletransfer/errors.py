"""The package's errors: one base class, and the kinds each front end treats differently.

Torch-free.  Front ends map them to their own terms: the CLI exits with 2 for
a usage error (:class:`OptionError`, :class:`InputError`) and 1 for anything
else; the web API answers 422 for the former.  An exception that is not a
:class:`StyleTransferError` is a bug in this package, never the user's fault.

An :class:`OptionError` names the option it is about with the API's keyword
(``size``, ``style_blend``); its message holds ``{option}`` wherever the
option is named, so that each front end spells it its own way
(:meth:`OptionError.render`): the CLI as ``--size``, the API as ``size``, the
web form by marking the field.
"""

from __future__ import annotations

from collections.abc import Callable


class StyleTransferError(Exception):
    """Base class of every error this package raises on purpose."""


class OptionError(StyleTransferError, ValueError):
    """An impossible option or combination of options.

    Attributes:
        option: the option's API name (a key of :data:`styletransfer.options.OPTIONS`).
        template: the message, with ``{option}`` where the option is named.
    """

    def __init__(self, option: str, template: str) -> None:
        self.option = option
        self.template = template if "{option}" in template else "{option}: " + template
        super().__init__(self.render())

    def render(self, spell: Callable[[str], str] | None = None) -> str:
        """The message with the option spelled by ``spell`` (default: the API name as is)."""
        name = self.option if spell is None else spell(self.option)
        return self.template.replace("{option}", name)


class InputError(StyleTransferError, ValueError):
    """An input file (image, weights, manifest) is missing, unreadable or unusable."""


class OutputError(StyleTransferError, OSError):
    """An output could not be written once the run was under way (a runtime failure, not a usage error)."""


class RunError(StyleTransferError, RuntimeError):
    """The run itself failed (for example the loss diverged)."""


class MissingExtra(StyleTransferError):
    """An optional package a front end needs is not installed (the message names the extra to install)."""


class Notice(UserWarning):
    """Something worth knowing that needs no action (``--quiet`` hides these; other warnings still show)."""


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix before running again (bad option or input)."""
    return isinstance(exc, (OptionError, InputError))
