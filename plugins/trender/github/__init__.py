"""GitHub REST API access: client, errors and README decoding."""
