"""Point-in-time feature families: pure functions over DataFrames, every one explicit in `as_of`."""
