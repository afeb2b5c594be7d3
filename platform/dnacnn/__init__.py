"""dnacnn: convolutional neural networks on DNA sequence, and genome-wide variant scoring, on Ray."""

__version__ = "0.1.0"
