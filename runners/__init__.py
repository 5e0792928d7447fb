"""The command line, configuration loading, pipeline options and sample data."""
