"""Running it: notebook parameters, profiles, stages, the pipeline, what a search chose, synthetic test data."""
