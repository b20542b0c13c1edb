"""What a grade tells: the student's Markdown feedback, Gradescope's results.json and the class's gradebook.

Every piece of a student's text (an id, a message, what their code printed) is
quoted so that it cannot change the page it lands on: Markdown escaped, code
fenced past any backticks, CSV cells defused of formulas.
"""

import csv
import json
import math
import re
from pathlib import Path

from grader.exercises import EXERCISE, EXERCISES, FILES
from grader.instructor.sandbox import weaker_description

def gradescope(grade):
    """The grade as Gradescope's results.json: hidden checks show after grades are published."""
    tests = []
    for check in grade.checks:
        tests.append({
            "name": f"{check.exercise} ({check.kind} check)",
            "score": check.score, "max_score": check.max_score,
            "status": "passed" if check.passed else "failed",
            "output": "\n".join(text for text in (check.reason or "passed", check.note) if text),
            "visibility": "visible" if check.kind == "public" else "after_published",
        })
    output = f"status: {grade.status}; sandbox: {grade.isolation or 'none'}"
    if grade.isolation == "weaker":
        output += f" ({weaker_description()})"
    output += "\n" + "\n".join(about_files(grade))
    if grade.files.refused:
        output += "\n\nFiles not taken from your submission:\n" + "\n".join(f"- {r}" for r in grade.files.refused)
    if grade.output:
        output += "\n\nYour code printed:\n" + grade.output
    return {"score": round(grade.score, 4), "execution_time": round(grade.seconds, 2),
            "output": output, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def feedback(grade):
    """Markdown feedback for one student, with the checks' teaching hints; the student's text is quoted safely."""
    lines = [f"# Style transfer: feedback for {_markdown_text(grade.student)}", "",
             f"Score: **{_fmt(grade.score)} / {grade.max_score}** (status: {grade.status})", "",
             *(f"- {_markdown_text(line)}" for line in about_files(grade)), "",
             "| exercise | public | hidden | points |", "|---|---|---|---|"]
    for exercise in EXERCISES:
        mine = {c.kind: c for c in grade.checks if c.exercise == exercise}
        cells = ["pass" if mine[k].passed else "fail" for k in ("public", "hidden")]
        lines.append(f"| {exercise} | {cells[0]} | {cells[1]} | {_fmt(grade.points(exercise))} / "
                     f"{EXERCISE[exercise].points} |")
    hints = [(c.exercise, c.kind, c.reason) for c in grade.checks if not c.passed]
    if hints:
        lines += ["", "## What to look at", ""]
        seen = set()
        for exercise, kind, reason in hints:
            if (exercise, reason) not in seen:
                seen.add((exercise, reason))
                lines.append(f"- **{exercise}** ({kind} check): {_markdown_text(reason)}")
    if grade.files.refused:
        lines += ["", "## Files not taken from your submission", ""]
        lines += [f"- {_markdown_text(r)}" for r in grade.files.refused]
    if grade.output:
        lines += ["", "## What your code printed (cut)", "", *_fenced(grade.output.strip())]
    return "\n".join(lines) + "\n"


def about_files(grade):
    """What a student reads first about their files: the ones graded, by their paths inside the submission,
    then one line for each thing found instead or besides, with what to do."""
    graded = ", ".join(grade.files.graded[file] for file in FILES if file in grade.files.graded)
    return [f"graded: {graded or 'nothing'}", *grade.files.notes]


def _fenced(text):
    """text in a code fence longer than any run of backticks inside it, so it cannot close the fence."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _markdown_text(text):
    """One line of a student's text (an id, a message) with Markdown's active characters escaped."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


def _fmt(value):
    return f"{value:g}" if not math.isnan(value) else "-"


def _cell(value):
    """A CSV cell a spreadsheet shows as text: formulas (=, +, -, @, tab, CR) are defused with a quote."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook(grades, path):
    """One CSV row per student: status, points per exercise, total."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "status", *EXERCISES, "total", "max"])
        for grade in grades:
            writer.writerow([_cell(grade.student), grade.status, *(_fmt(grade.points(e)) for e in EXERCISES),
                             _fmt(grade.score), grade.max_score])


def write_outputs(grade, json_path=None, feedback_path=None):
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(gradescope(grade), indent=2), encoding="utf-8")
    if feedback_path:
        Path(feedback_path).parent.mkdir(parents=True, exist_ok=True)
        Path(feedback_path).write_text(feedback(grade), encoding="utf-8")
