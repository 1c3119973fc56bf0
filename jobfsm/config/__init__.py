"""Job files: the schema, reading and checking them, writing them safely, watching their folder."""
