"""What runs keep between them: the SQLite state and the snapshot incremental runs plan from."""
