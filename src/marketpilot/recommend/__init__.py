"""Recommendations: a two-stage (retrieve, then rank) recommender and the online service around it.

`model.py` is the contract between the two halves: everything trained offline produces a
`Recommender`; the online service (`service.py`) filters, falls back and logs around it.
"""
