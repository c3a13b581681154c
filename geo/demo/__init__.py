"""The synthetic demo district: boundaries from data/boundaries and facilities from a seed."""
