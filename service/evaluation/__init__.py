"""Measuring the classifier on held-out labelled films (`make eval`)."""
