"""From directory objects to desired SCIM values: mappings, expressions, scoping filters, the
target's data rules.
"""
