"""Market data: sources → the parquet lake → panels (time × instrument) read with DuckDB."""
