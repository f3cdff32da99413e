"""The papers' tables as units: which runs each needs, how they are compared (``reproduce-paper``)."""
