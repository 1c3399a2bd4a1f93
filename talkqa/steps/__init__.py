"""The step definitions of the generated features, and the pytest plugin that runs them."""
