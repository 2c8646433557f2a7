"""Stage-1 retrievers of the two-stage recommender; each one module, one shared contract (`base.py`)."""
