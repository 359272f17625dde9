"""The package's version: the installed distribution's (semantic versioning), in a room of its own so that any module may import it.

The version is written once, in ``pyproject.toml``; installing the package
records it in the distribution's metadata, which this module reads.  The
distribution is ``gatys-styletransfer`` (PyPI's ``styletransfer`` is another
project); the import package and the command are ``styletransfer``.
"""

from importlib.metadata import PackageNotFoundError, version

#: The name this project is installed under (``pip install gatys-styletransfer``).
DISTRIBUTION = "gatys-styletransfer"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
