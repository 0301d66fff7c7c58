"""The shapes world: a tiny offline GenEval over coloured geometric shapes, scored by an analytic detector."""
