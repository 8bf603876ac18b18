"""The classifier as a pipeline of small named stages, each reading and writing the answer being built
(answer.py): route → retrieve → vote and heads → recognise → corrections → LLM → fuse. classifier.py composes
them; the CPU stages run under the API's admission slot, the LLM stage after it (its waiting costs no CPU)."""
