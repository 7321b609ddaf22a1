"""``python -m testbed.fake_heymarket``: serve a fake account in the foreground until stopped."""

from testbed.fake_heymarket import main

main()
