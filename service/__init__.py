"""Movie genre classifier: retrieval-grounded LLM classification of film descriptions."""
