"""Reports: rendering only (tables, JUnit XML, plots) of what the pipelines return."""
