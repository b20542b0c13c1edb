"""The exercises of stylelab, one module per topic.

solutions/ holds the reference implementation, the single source of truth;
starter/ is generated from it by grader/instructor/starter.py, each exercise body
replaced by a stub for students to fill in.
"""
