"""One scorer per benchmark task (predictions file + annotation files -> metrics dict), plus what they share."""
