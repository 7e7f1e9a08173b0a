"""key_value_file: the settings of a `key value` or `key=value` configuration file."""
