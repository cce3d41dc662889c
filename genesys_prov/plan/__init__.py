"""The plan as a value: its model, how it is built, the safety guards, plan files. Pure: no
HTTP, no database.
"""
