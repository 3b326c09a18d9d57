"""Sigma rules as cranewatch detections: loaded and parsed with pySigma, field names mapped
per log source by pySigma processing pipelines (``pipelines.py``), compiled to vectorized
masks over event batches (``compile.py``), and Sigma correlation rules run as stateful
detections in event time (``correlate.py``)."""
