"""Stage 5: per-case metrics, and the papers' tables, statistics and figures from finished runs."""
