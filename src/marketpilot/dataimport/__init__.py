"""Data import: documented CSV/Parquet schemas per entity, validated, all-or-nothing."""
