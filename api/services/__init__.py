"""What the API does, in plain Python over a database session.

Views call these functions and commit; the rules themselves (eligibility,
deadlines, risk) live in the ``shared`` package.
"""
