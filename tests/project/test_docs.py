"""The docs say what is true: every link leads somewhere, every command they show exists.

README.md and docs/*.md are read as Markdown: links outside code, and code
(fenced blocks and inline spans). In the code, `make TARGET` must be a target
of the Makefile; `python -m stylelab SUB --flag` and `python -m grader SUB
--flag` must be subcommands and options of their parsers; `python -m
bench.X` (any module of the kit's packages) must be a file, and its flags must
appear in it; `python tools/X.py --flag` likewise; a span that is only a
subcommand and its flags (`train-fast --tiles 2`) or only flags (`--resume`)
must name options that exist; a path under one of the kit's folders
(`labs/...`, `tools/...`) must exist (a glob must match); and a dotted name
(`stylelab.fast.guided_upsample`) must import.
"""

import argparse
import glob
import importlib
import re
import subprocess
from functools import cache

import pytest
from PIL import Image
from helpers import ROOT

KIT = ROOT
DOCS = [KIT / "README.md", *sorted((KIT / "docs").glob("*.md"))]
SHEET = KIT / "docs" / "sheet.png"
PACKAGES = ("stylelab", "grader", "bench", "solutions", "starter", "tools")  # the kit's own modules
# the kit's folders: a path in code that starts with one of these must exist (out/ is written by runs)
FOLDERS = ("labs", "starter", "solutions", "grader", "stylelab", "tests", "bench", "tools", "docs", ".ci")
OTHER_FLAGS = {"--nbval-lax", "--nbval", "--help", "-h"}  # pytest's, shown beside the kit's
HISTORY = ("earlier session", "previous session", "this session", "the first release", "before these settings",
           "earlier version", "issue #")

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SOURCE = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
DOTTED = re.compile(r"^((?:%s)(?:\.\w+)+)(?:\(.*\))?$" % "|".join(PACKAGES))


# ---- reading Markdown ----

def split(text):
    """(prose, code lines): prose with fenced blocks blanked out, and each line of code (fenced or inline)."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            prose.append("")
        elif fenced:
            code.append(line)
            prose.append("")
        else:
            prose.append(line)
    prose = "\n".join(prose)
    # an inline span may wrap across lines of a paragraph
    code += [" ".join(span.split()) for _, span in INLINE.findall(prose)]
    return INLINE.sub(" ", prose), code


def slug(heading):
    """The anchor GitHub gives a heading."""
    heading = re.sub(r"[`*_]", "", heading.strip().lower()).replace("](", " ")
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(path):
    prose, _ = split(path.read_text())
    seen, out = {}, set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose, re.M):
        base = slug(heading)
        out.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return out


# ---- what exists ----

@cache
def stylelab_parser():
    from stylelab.cli import build_parser

    return build_parser()


@cache
def grader_parser():
    """grader/__main__.py builds its parser inside main(): catch it as main() hands it its arguments."""
    from grader import __main__ as grader_main

    class Caught(Exception):
        pass

    def catch(parser, *args, **kwargs):
        raise Caught(parser)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        try:
            grader_main.main([])
        except Caught as caught:
            return caught.args[0]
    raise AssertionError("python -m grader's main() never parsed its arguments")


def subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def options(parser):
    return {flag for action in parser._actions for flag in action.option_strings}


@cache
def make_targets():
    text = (KIT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)) - {".PHONY"}


@cache
def every_flag():
    flags = set(OTHER_FLAGS)
    for parser in (stylelab_parser(), grader_parser()):
        flags |= options(parser)
        for sub in subcommands(parser).values():
            flags |= options(sub)
    return flags


# ---- checking one doc ----

def command_problems(line):
    """What in one line of code names a command, option, module or path the kit does not have."""
    problems = []
    line = re.sub(r"(^|\s)#.*$", "", line)  # a shell comment
    for part in re.split(r"&&|\|\||;|\||\$\(|\)", line):
        words = part.split()
        if not words:
            continue
        problems += make_problems(words)
        problems += python_problems(part)
        problems += bare_problems(words)
    # a path a command above already reported is not reported again
    problems += [text for word, text in path_problems(line) if not any(word in p for p in problems)]
    return problems


def make_problems(words):
    if "make" not in words:
        return []
    at = words.index("make")
    if at and not re.fullmatch(r"[A-Z_]+=\S*", words[at - 1]):  # `make` in a sentence, not a command
        return []
    targets = []
    for word in words[at + 1:]:
        if word.startswith("-") or "=" in word:
            continue
        if not re.fullmatch(r"[a-z][\w-]*", word):
            break
        targets.append(word)
    return [f"`make {t}`: the Makefile has no target {t!r}" for t in targets if t not in make_targets()]


def python_problems(part):
    run = re.search(r"(?:^|\s)!?python3?\s+(-m\s+)?(\S+)(.*)$", part)
    if not run:
        return []
    module, name, rest = bool(run.group(1)), run.group(2), run.group(3)
    flags = FLAG.findall(rest)
    if module and name in ("stylelab", "grader"):
        parser = stylelab_parser() if name == "stylelab" else grader_parser()
        words = rest.split()
        sub = words[0] if words and not words[0].startswith("-") else None
        if sub is None:
            known = options(parser)
        elif sub not in subcommands(parser):
            return [f"`python -m {name} {sub}`: {name} has no subcommand {sub!r} "
                    f"(it has {', '.join(subcommands(parser))})"]
        else:
            known = options(subcommands(parser)[sub]) | options(parser)
        return [f"`python -m {name} {sub or ''}`: no option {flag}" for flag in flags if flag not in known]
    if module:
        top = name.split(".")[0]
        if top not in PACKAGES:
            return []  # pytest, jupyter, pip: not the kit's
        stem = KIT / name.replace(".", "/")
        source = stem.with_suffix(".py") if stem.with_suffix(".py").is_file() else stem / "__main__.py"
    else:
        source = KIT / name
        if not name.endswith(".py") or name.split("/")[0] not in FOLDERS:
            return []  # python3 on someone else's path
    if not source.is_file():
        missing = stem.with_suffix(".py") if module else source
        return [f"`python {'-m ' if module else ''}{name}`: there is no {missing.relative_to(KIT)}"]
    text = source.read_text()
    return [f"`python {'-m ' if module else ''}{name}`: {source.relative_to(KIT)} has no option {flag}"
            for flag in flags if flag not in ("-h", "--help") and flag not in text]


def bare_problems(words):
    """A span of only flags, or of a subcommand and its flags, as prose quotes them."""
    if words[0].startswith("-") and FLAG.fullmatch(words[0]):
        return [f"`{words[0]}`: no command of the kit has that option" for word in words[:1]
                if word not in every_flag()]
    flags = [w for w in words[1:] if FLAG.fullmatch(w)]
    if not flags:
        return []
    for parser in (stylelab_parser(), grader_parser()):
        sub = subcommands(parser).get(words[0])
        if sub is not None:
            known = options(sub)
            return [f"`{words[0]} {flag}`: {words[0]} has no option {flag}" for flag in flags if flag not in known]
    return []


def path_problems(line):
    """(path, problem) for each path under the kit's folders that is not there."""
    problems = []
    for word in re.findall(r"[\w.~*/-]+", line):
        word = word.rstrip(".")
        if "/" not in word or word.split("/")[0] not in FOLDERS:
            continue
        if any(c in word for c in "*?"):
            if not glob.glob(str(KIT / word)):
                problems.append((word, f"`{word}`: nothing in the kit matches it"))
        elif not (KIT / word).exists():
            problems.append((word, f"`{word}`: there is no such file or folder in the kit"))
    return problems


def dotted_problems(span):
    match = DOTTED.match(span)
    if not match:
        return []
    parts = match.group(1).split(".")
    for end in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(value, attribute):
                return [f"`{match.group(1)}`: {'.'.join(parts[:end])} has no {attribute!r}"]
            value = getattr(value, attribute)
        return []
    return [f"`{match.group(1)}`: no such module"]


def link_problems(prose, doc):
    problems = []
    for target in LINK.findall(prose) + HTML_SOURCE.findall(prose):
        if re.match(r"[a-z][\w+.-]*:", target) or target.startswith("//"):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        where = (doc.parent / path).resolve() if path else doc
        if not where.exists():
            problems.append(f"link to {target}: there is no {path}")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            problems.append(f"link to {target}: {where.name} has no heading #{anchor}")
    return problems


def problems(text, doc):
    prose, code = split(text)
    found = link_problems(prose, doc)
    for line in code:
        found += command_problems(line) + dotted_problems(line.strip())
    return found


# ---- the tests ----

@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(KIT)))
def test_every_link_and_command_in_the_docs_exists(doc):
    assert problems(doc.read_text(), doc) == []


def test_the_checker_reports_what_does_not_exist():
    doc = KIT / "docs" / "fake.md"
    fake = """
See [the engine](engine.md#no-such-heading), [nothing](nothing.md) and [the labs](students.md#the-labs).

```sh
make demo
make no-such-target
python -m stylelab transfer --content chelsea --no-such-flag 3
python -m stylelab no-such-command
python -m grader check --impl solutions
python -m grader grade-class x --not-a-grader-flag
python -m bench.no_such_bench
python -m bench.bench_transfer --not-in-its-source
python tools/no_such_tool.py
```

Run `train-fast --tiles 2 --bogus-option`, or `--made-up-flag`, then open `labs/no_such_lab.ipynb`,
`labs/reference/*.jpeg` and `stylelab.fast.no_such_function`.
"""
    found = problems(fake, doc)
    expected = ["has no heading #no-such-heading", "there is no nothing.md", "no target 'no-such-target'",
                "no option --no-such-flag", "no subcommand 'no-such-command'", "no option --not-a-grader-flag",
                "there is no bench/no_such_bench", "has no option --not-in-its-source",
                "there is no tools/no_such_tool.py", "train-fast has no option --bogus-option",
                "`--made-up-flag`: no command", "labs/no_such_lab.ipynb", "`labs/reference/*.jpeg`: nothing",
                "has no 'no_such_function'"]
    for text in expected:
        assert any(text in line for line in found), (text, found)
    assert len(found) == len(expected), found  # and nothing that does exist


def test_the_space_subcommand_the_docs_show_exists():
    assert "space" in subcommands(stylelab_parser()), "docs/demo.md shows `python -m stylelab space OUT/`"


def test_the_readme_is_short_and_opens_with_the_kit_s_own_pictures():
    readme = (KIT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    first_picture = LINK.search(readme)
    assert first_picture and first_picture.group(1) == "docs/sheet.png"
    assert SHEET.stat().st_size < 300 * 1024, "docs/sheet.png: redraw it smaller (tools/make_readme_sheet.py)"
    with Image.open(SHEET) as sheet:
        assert sheet.format == "PNG" and 800 <= sheet.width <= 1200


def tracked_docs():
    try:
        listed = subprocess.run(["git", "ls-files", "*.md"], cwd=KIT, capture_output=True, text=True, check=True)
        names = listed.stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a clone: a release or an unpacked archive
        names = []
    paths = {KIT / name for name in names} | set(DOCS)
    return sorted(p for p in paths if p.is_file())


def test_the_docs_say_what_is_true_now_not_how_it_came_to_be():
    for doc in tracked_docs():
        text = doc.read_text().lower()
        for phrase in HISTORY:
            assert phrase not in text, f"{doc.relative_to(KIT)} says {phrase!r}: say what is true now"
