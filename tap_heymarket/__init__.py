"""Singer tap for Heymarket contacts."""

from importlib.metadata import version

#: From the installed package's metadata, which pyproject.toml's ``version`` sets: one place,
#: the same one the SDK's ``--about`` reads.
__version__ = version("tap-heymarket")
