"""Policies: the model, the loader (with file:line errors), the evaluator, waivers and the schema."""
