"""knative-aggregator: the fan-in Knative Parallel lacks."""

__version__ = "0.1.0"
