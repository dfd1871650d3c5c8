"""rfa_toolbox.utils: graph queries."""
