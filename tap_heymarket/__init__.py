"""Singer tap for Heymarket contacts."""
