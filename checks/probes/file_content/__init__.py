"""file_content: the lines of a text file, optionally only those matching a regular expression."""
