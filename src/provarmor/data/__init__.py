"""Data files packaged with ProvArmor (samples, tables)."""
