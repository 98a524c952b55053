"""The numbers of README.md and of the pages under docs/, generated from the results
files and the profiles.

    python -m vinet_utils.report            # rewrite the generated blocks of every page
    python -m vinet_utils.report --check    # exit 1 if a page disagrees with them

Each block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
on exactly one page (README.md or a ``docs/*.md`` page), and only those lines are
rewritten. ``BLOCKS`` is the one list of block names. A test checks that every page
equals its rendering, so no number on a page can drift from a results file or a
profile.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vinet_utils.common.results import REPO_ROOT
from vinet_utils.report.cifar100 import (cifar100_curve, cifar100_findings, cifar100_table,
                                         cifar100_verdict, stage_costs)
from vinet_utils.report.answer_page import answer
from vinet_utils.report.claims import verdict as claims_verdict
from vinet_utils.report.common import DOCS, PAPER_RUN, README
from vinet_utils.report.oavi_page import oavi, oavi_summary
from vinet_utils.report.profiles import profiles, where
from vinet_utils.report.protocol_pages import protocol, sweep
from vinet_utils.report.reference_page import reference
from vinet_utils.report.results_page import (ablations, breakdown, budget_curve, flop_limits, memory,
                                             stage_times, table, targets, times)
from vinet_utils.report.verdict import verdict

BLOCKS = {"answer": answer, "verdict": claims_verdict, "study": verdict,
          "cifar100": cifar100_verdict, "cifar100_findings": cifar100_findings,
          "cifar100_table": cifar100_table, "cifar100_stages": stage_costs, "where": where,
          "oavi": oavi, "oavi_summary": oavi_summary, "targets": targets,
          "profiles": profiles, "table": table, "ablations": ablations, "sweep": sweep,
          "times": times, "paper_table": lambda: table(PAPER_RUN, caption=True),
          "paper_times": stage_times, "flop_limits": flop_limits, "breakdown": breakdown,
          "budget": budget_curve, "cifar100_budget": cifar100_curve,
          "memory": memory, "protocol": protocol,
          "reference": reference}

_BLOCK = re.compile(r"<!-- generated:(\w+) -->.*?<!-- /generated:\1 -->", flags=re.S)


def pages() -> list[Path]:
    """README.md and every page under docs/, the pages ``render`` may fill."""
    return [README] + sorted(DOCS.glob("*.md"))


def blocks(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order, repeats kept."""
    return re.findall(r"<!-- generated:(\w+) -->", text)


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    def fill(m):
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"generated block {name!r} is unknown; known: {', '.join(BLOCKS)}")
        return f"<!-- generated:{name} -->\n{wrap(BLOCKS[name]())}\n<!-- /generated:{name} -->"
    return _BLOCK.sub(fill, text)


#: The longest line a page's prose may have: about a reader's screen.
WIDTH = 100


def wrap(block: str, width: int = WIDTH) -> str:
    """``block`` with every prose line, list item or paragraph, folded at ``width``
    characters between words; table rows, headings and code stay as they are (a
    markdown table cannot fold)."""
    import textwrap

    out, code = [], False
    for line in block.split("\n"):
        if line.startswith("```"):
            code = not code
        if code or line.startswith(("|", "#", "<!--", "![")) or len(line) <= width:
            out.append(line)
            continue
        item = re.match(r"(\s*(?:[-*] |\d+\. )?)", line).group(1)
        out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=" " * len(item),
                             break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    texts = {p: p.read_text() for p in pages()}
    seen = [b for t in texts.values() for b in blocks(t)]
    twice = sorted({b for b in seen if seen.count(b) > 1})
    missing = [b for b in BLOCKS if b not in seen]
    if twice or missing:
        print(f"each block must be on exactly one page; twice: {twice or 'none'}, "
              f"on no page: {missing or 'none'}")
        return 1
    new = {path: render(text) for path, text in texts.items()}  # all, before any write
    stale = [path.relative_to(REPO_ROOT) for path in texts if new[path] != texts[path]]
    if "--check" in argv:
        if stale:
            print(f"{', '.join(map(str, stale))} disagree(s) with the results files: "
                  "run python -m vinet_utils.report")
            return 1
        print(f"{len(texts)} pages agree with the results files")
        return 0
    for path in texts:
        if new[path] != texts[path]:
            path.write_text(new[path])
    print(f"generated blocks rewritten in: {', '.join(map(str, stale)) or 'none (all up to date)'}")
    return 0
