"""Allow ``python -m tap_heymarket``."""

from tap_heymarket.tap import TapHeymarket

TapHeymarket.cli()
