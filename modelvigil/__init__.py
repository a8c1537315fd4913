"""modelvigil: watch models deployed on Cloudera Machine Learning, or on its embedded stand-in."""

__version__ = "0.1.0"
