"""Settings and the other pieces every part of the service starts from."""
