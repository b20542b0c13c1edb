"""The instructor's side of the grader: never in a student release.

grader/ holds what students get (the public checks, the exercise records, the
wire protocol and the sandboxed worker); this folder holds what grades them
and what builds their release:

- `grade.py`: grading a class, each submission unpacked (`submission.py`) and
  run in its own sandbox (`sandbox.py`, `seccomp.py`), with the hidden checks
  (`hidden.py`), and told in feedback, Gradescope's results and a gradebook
  (`report.py`);
- `reference.py`: building a check's case from solutions/ (`cases.py`'s inputs,
  `mistakes.py`'s catalogue), which `make_reference.py` writes to
  grader/reference/ and `numerics.py` holds the tolerances against;
- `starter.py`: starter/ generated from solutions/;
- `release.py`: the student bundle, the instructor's labs and Gradescope's zip,
  from the files in `templates/`.
"""
