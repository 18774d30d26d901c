"""Moving networks between simulators: NIR (the field's interchange format) for the PyTorch engine."""
