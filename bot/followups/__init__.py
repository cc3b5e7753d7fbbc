"""Follow-ups: rows in the database (the truth) and APScheduler jobs (the clock)."""
