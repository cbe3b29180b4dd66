"""PostgreSQL sink: reviews, predictions, labels and dead letters, one row per key."""
