"""Measure how much public WDL Ferry accepts as an operation, against miniwdl's own verdict.

Run from a Ferry checkout (it needs Ferry's venv, Django settings and a database):

    FERRY_MIRRORS=/work/.mirror tests/corpus/extract.sh   # (re)extract the corpora (fetch tool)
    FERRY_TEST_STORAGE_ROOT=/tmp/wdlcorpus-ferry .venv/bin/python -m tests.harness.pgcluster \
        sh -c '.venv/bin/python manage.py migrate -v0 && \
               .venv/bin/python tests/corpus/measure.py [--ferry /path/to/worktree] [source ...]'

A database is needed (an empty one): for a document miniwdl refuses, ingestion asks the
registered Cromwell servers (none here, so miniwdl's refusal stands, as on a Ferry without
Cromwell).

``--ferry`` points at another Ferry checkout (its code is imported instead of /work/main's; run
with that checkout's venv and cwd). Writes results.jsonl (one line per file) and results.md
(per-source tables) next to this script.

For every ``.wdl`` file of every source folder (``cromwell``, ``miniwdl``, ``biowdl-tasks``,
``learn-wdl``, ``gatk4-germline-snps-indels``):

* miniwdl: ``WDL.load(file)`` with the default local reader (imports relative to the importer;
  URL imports fail offline and are counted apart).
* Ferry: the file and its transitive imports are copied into a fresh folder laid out as in the
  source (root = the source's root), with ``operation.json`` = ``{"workflow": "<relative path>"}``,
  and passed to ``operations.ingestion.check_wdl_source`` -- the function ``ingest_operation``
  calls for a WDL source after fetching it and before storing/recording (no Docker, no DB).
  Accepted = it returns; refused = ``IngestionError`` / ``SpecError``, whose messages are grouped.

Flags kept per file: ``womtool_invalid`` (under womtool's ``.../invalid/`` folders),
``centaur_submitfailure`` (a centaur .test with ``testFormat: submitfailure`` names it),
``imported`` (another file of the same source imports it: a library rather than an entry point).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ["cromwell", "miniwdl", "biowdl-tasks", "learn-wdl", "gatk4-germline-snps-indels"]

parser = argparse.ArgumentParser()
parser.add_argument("sources", nargs="*", default=SOURCES)
parser.add_argument("--ferry", default=os.getcwd(), help="Ferry checkout to import (default: cwd)")
parser.add_argument(
    "--report-only", action="store_true", help="rebuild results.md from results.jsonl"
)
args = parser.parse_args()

sys.path.insert(0, str(Path(args.ferry).resolve()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

import WDL  # noqa: E402

from operations import ingestion  # noqa: E402
from operations.spec import SpecError  # noqa: E402

# --- miniwdl ------------------------------------------------------------------------------------


def miniwdl_load(path: Path):
    """(document or None, error class, message)."""
    cwd = os.getcwd()
    os.chdir(tempfile.gettempdir())  # no cwd-relative import resolution by accident
    try:
        return WDL.load(str(path), path=[], import_max_depth=10), "", ""
    except Exception as exc:
        cause: BaseException = exc
        while isinstance(cause, WDL.Error.ImportError) and cause.__cause__ is not None:
            cause = cause.__cause__
        msg = f"{type(exc).__name__}: {exc}"
        if cause is not exc:
            msg += f" <- {type(cause).__name__}: {cause}"
        return None, type(exc).__name__, msg[:400]
    finally:
        os.chdir(cwd)


def closure(doc) -> list[str]:
    """Absolute paths of the document and everything it imports."""
    seen, pending = [], [doc]
    while pending:
        d = pending.pop()
        if d.pos.abspath in seen:
            continue
        seen.append(d.pos.abspath)
        pending += [imp.doc for imp in d.imports if imp.doc is not None]
    return seen


def imports_of(path: Path) -> list[str]:
    """Import URIs by a light regex (works even when miniwdl refuses the file)."""
    text = path.read_text(errors="replace")
    return re.findall(r'^\s*import\s+"([^"]+)"', text, flags=re.M)


# --- Ferry --------------------------------------------------------------------------------------


def ferry_check(root: Path, main: Path, files: list[Path]):
    """(accepted, error code, [messages], spec or None) from ingestion.check_wdl_source."""
    with tempfile.TemporaryDirectory(prefix="wdlcorpus-") as tmp:
        folder = Path(tmp) / "op"
        for f in files:
            rel = f.relative_to(root)
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, folder / rel)
        metadata = {"workflow": main.relative_to(root).as_posix()}
        data = json.dumps(metadata).encode()
        (folder / "operation.json").write_bytes(data)
        fetched = ingestion.FetchedSource(
            folder=folder, revision="", source=str(main.relative_to(root)), label=main.name
        )
        source = ingestion.WdlSource(metadata, "operation.json", data)
        try:
            checked = ingestion.check_wdl_source(fetched, source, lambda _m: None)
            return True, "", [], checked.spec
        except ingestion.IngestionError as exc:
            details = (exc.details or {}).get("workflow") or [str(exc)]
            return False, exc.code, [str(d) for d in details], None
        except SpecError as exc:
            msgs = [f"{p.get('path')}: {p.get('message')}" for p in getattr(exc, "errors", [])]
            return False, "invalid_spec", msgs or [str(exc)], None
        except Exception as exc:
            tb = traceback.format_exc(limit=3).replace("\n", " | ")
            return False, "CRASH", [f"{type(exc).__name__}: {exc} :: {tb}"[:500]], None


# --- classification -----------------------------------------------------------------------------


def type_kind(text: str) -> str:
    text = text.strip()
    for head in ("Map", "Pair", "Directory", "Object"):
        if text.startswith(head):
            return head
    if text.startswith("Array["):
        inner = text[len("Array[") :]
        return "Array[" + type_kind(inner.rstrip("]+?")) + "]"
    if text in ("File", "Int", "Float", "String", "Boolean"):
        return text
    return "struct"


def classify(message: str, doc) -> str:
    m = message.split(": ", 1)[1] if re.match(r"^\S+:\d+:\d+: ", message) else message
    m = re.sub(r"^\S+\.wdl: ", "", m)
    if m.startswith("no workflow and no task in"):
        return "no workflow: no task either (structs only / empty)"
    if " is a task library (" in m:
        return "no workflow: task library (several tasks)"
    if m.startswith("no workflow in"):
        tasks = len(doc.tasks) if doc is not None else -1
        if tasks == 1:
            return "no workflow: a single task"
        if tasks > 1:
            return "no workflow: task library (several tasks)"
        return "no workflow: no task either (structs only / empty)"
    if "leaves its required input" in m:
        return "call leaves a required input unset"
    hit = re.match(r"input \S+: type (.+) is not supported as an operation input", m)
    if hit:
        return f"workflow input type unsupported: {type_kind(hit[1])}"
    hit = re.match(r"output \S+: type (.+?) is not supported as an operation output", m)
    if hit:
        return f"workflow output type unsupported: {type_kind(hit[1])}"
    if "give it a name of its own" in m:
        return "output named like call.x (draft-2 `output { call.x }` / wildcard)"
    if "the default value is not a valid" in m:
        return "input default doesn't coerce to the type"
    if "not in the bundle" in m or "not URLs" in m or "outside the bundle" in m:
        return "import refused by the bundle reader"
    if " :: Traceback" in m:
        return "CRASH (uncaught, a 500 through the API): " + m.split(" :: ")[0][:60]
    if "meta version" in m:
        return "workflow meta version not a valid Ferry version"
    return "other: " + re.sub(r"\d+", "N", m)[:90]


# --- run ----------------------------------------------------------------------------------------


def centaur_flags(root: Path) -> tuple[dict[str, str], dict[str, list[Path]]]:
    """Relative wdl path -> centaur testFormat, and -> the test's ``imports`` list, for files
    named as a test's workflow."""
    formats: dict[str, str] = {}
    imports: dict[str, list[Path]] = {}
    base = root / "centaur/src/main/resources/standardTestCases"
    for test in sorted(base.rglob("*.test")):
        text = test.read_text(errors="replace")
        fmt = re.search(r"^testFormat:\s*(\S+)", text, flags=re.M | re.I)
        wf = re.search(r"^\s*workflow:\s*(\S+)", text, flags=re.M)
        if fmt and wf:
            rel = (base / wf[1]).resolve().relative_to(root.resolve()).as_posix()
            formats[rel] = fmt[1].lower()
            listed = re.search(r"^\s*imports:\s*\[(.*?)\]", text, flags=re.M | re.S)
            if listed:
                imports[rel] = [base / p for p in re.findall(r"[\w./-]+\.wdl", listed[1])]
    return formats, imports


def centaur_layout(root: Path, rel: str, imports: list[Path]) -> Path:
    """The folder Centaur submits: the workflow file, and its ``imports`` zipped by file name."""
    folder = HERE / "_layouts" / root.name / rel[: -len(".wdl")]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in imports:
        if f.is_file():
            shutil.copyfile(f, folder / f.name)
    shutil.copyfile(root / rel, folder / Path(rel).name)
    return folder / Path(rel).name


def measure(source: str) -> list[dict]:
    root = HERE / source
    formats, centaur_imports = centaur_flags(root) if source == "cromwell" else ({}, {})
    rows = []
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wdl" and p.is_file())
    imported: set[str] = set()
    for path in files:
        for uri in imports_of(path):
            if "://" not in uri:
                imported.add(os.path.normpath(path.parent / uri))
    for path in files:
        rel = path.relative_to(root).as_posix()
        row = {
            "source": source,
            "path": rel,
            "womtool_invalid": "/invalid/" in f"/{rel}",
            "centaur_format": formats.get(rel, ""),
            "imported": str(path) in imported,
            "url_import": any("://" in u for u in imports_of(path)),
        }
        file_root, main = root, path
        if rel in centaur_imports:  # measured in the layout Centaur submits it in
            main = centaur_layout(root, rel, centaur_imports[rel])
            file_root = main.parent
            row["layout"] = "centaur imports zip"
        doc, _err_class, err = miniwdl_load(main)
        row["miniwdl_ok"] = doc is not None
        row["miniwdl_error"] = err
        row["tasks"] = len(doc.tasks) if doc is not None else None
        row["has_workflow"] = (doc.workflow is not None) if doc is not None else None
        row["version"] = (doc.wdl_version or "draft-2") if doc is not None else None
        if doc is not None:
            deps = [Path(p) for p in closure(doc)]
            outside = [d for d in deps if not d.resolve().is_relative_to(file_root.resolve())]
            row["imports_outside_source"] = [str(d) for d in outside]
            deps = [d for d in deps if d not in outside]
        else:
            # Ferry on a file miniwdl refuses: for the import-error-location bullet only
            deps, pending = [], [main]
            while pending:  # imports by regex, transitively
                f = pending.pop()
                if f in deps or not f.is_file():
                    continue
                deps.append(f)
                pending += [
                    Path(os.path.normpath(f.parent / u)) for u in imports_of(f) if "://" not in u
                ]
        deps = [d for d in deps if d.resolve().is_relative_to(file_root.resolve())]
        ok, code, msgs, spec = ferry_check(file_root, main, deps)
        row.update(ferry_ok=ok, ferry_code=code, ferry_messages=msgs[:20])
        row["ferry_reasons"] = sorted({classify(m, doc) for m in msgs}) if not ok else []
        row["womtool_warnings"] = (spec or {}).get("wdl", {}).get("womtool_warnings", [])
        if ok and doc is not None and doc.workflow is not None:
            available = [b.name for b in doc.workflow.available_inputs]
            row["ferry_inputs"] = len(spec["inputs"])
            row["engine_inputs"] = len(available)
            exposed = set((spec.get("wdl") or {}).get("engine_names", {}).values())
            row["hidden_call_inputs"] = sorted(
                n for n in available if "." in n and n not in exposed
            )
        rows.append(row)
    return rows


# Issue 13 "WDL" bullets a refusal reason falls under (None: no bullet covers it).
BULLETS = {
    "call leaves a required input unset": "B1 nested call inputs",
    "workflow input type unsupported": "B2 every WDL type",
    "workflow output type unsupported": "B2 every WDL type",
    "no workflow: a single task": "B3 single task runs",
    "no workflow: task library (several tasks)": "B3 (stays refused, saying so)",
    "no workflow: no task either (structs only / empty)": "B3 (stays refused)",
    "import refused by the bundle reader": "B4 import errors",
}


def bullet(reason: str) -> str:
    for prefix, name in BULLETS.items():
        if reason.startswith(prefix):
            return name
    return "none (not in issue 13)"


def would_accept(rows: list[dict], fixed: set[str]) -> int:
    """Refused files whose every reason is under one of the ``fixed`` bullets."""
    return sum(
        1
        for r in rows
        if r["ferry_reasons"] and all(bullet(x) in fixed for x in r["ferry_reasons"])
    )


def examples(rows: list[dict], n: int = 3) -> str:
    return ", ".join(f"`{r['path']}`" for r in rows[:n])


def report(all_rows: list[dict]) -> str:
    out = []
    by_source = collections.defaultdict(list)
    for r in all_rows:
        by_source[r["source"]].append(r)
    totals: collections.Counter[str] = collections.Counter()
    for source, rows in by_source.items():
        invalid = [
            r for r in rows if r["womtool_invalid"] or r["centaur_format"] == "submitfailure"
        ]
        tried = [r for r in rows if r not in invalid]
        mw_no = [r for r in tried if not r["miniwdl_ok"]]
        mw_ok = [r for r in tried if r["miniwdl_ok"]]
        f_ok = [r for r in mw_ok if r["ferry_ok"]]
        f_no = [r for r in mw_ok if not r["ferry_ok"]]
        entry = [r for r in mw_ok if not r["imported"]]
        entry_ok = [r for r in entry if r["ferry_ok"]]
        wf = [r for r in mw_ok if r["has_workflow"]]
        wf_ok = [r for r in wf if r["ferry_ok"]]
        totals.update(
            files=len(rows),
            skipped_invalid=len(invalid),
            tried=len(tried),
            miniwdl_refused=len(mw_no),
            miniwdl_ok=len(mw_ok),
            ferry_ok=len(f_ok),
            ferry_refused=len(f_no),
            entry=len(entry),
            entry_ok=len(entry_ok),
            wf=len(wf),
            wf_ok=len(wf_ok),
        )
        out.append(f"### {source}\n")
        out.append(
            f"- .wdl files: {len(rows)}; marked invalid by their own tests (womtool `invalid/`, "
            f"centaur `submitfailure`), skipped: {len(invalid)}\n"
            f"- tried: {len(tried)}; miniwdl refuses: {len(mw_no)}; **miniwdl accepts: {len(mw_ok)}**\n"
            f"- **Ferry accepts: {len(f_ok)} / {len(mw_ok)}**; refuses {len(f_no)}\n"
            f"- of these, documents with a workflow: {len(wf)}, Ferry accepts {len(wf_ok)}; "
            f"entry files (not imported by another file of the source): {len(entry)}, "
            f"Ferry accepts {len(entry_ok)}\n"
        )
        if mw_no:
            reasons = collections.Counter(
                "URL import (offline)" if r["url_import"] else r["miniwdl_error"].split(":")[0]
                for r in mw_no
            )
            out.append(
                "- miniwdl's refusals by class: "
                + ", ".join(f"{k} {v}" for k, v in reasons.most_common())
                + "\n"
            )
        reason_rows = collections.defaultdict(list)
        for r in f_no:
            for reason in r["ferry_reasons"]:
                reason_rows[reason].append(r)
        if reason_rows:
            out.append(
                "\n| Ferry refuses because | issue 13 bullet | files | sole reason | examples |\n|---|---|---|---|---|\n"
            )
            for reason, rs in sorted(reason_rows.items(), key=lambda kv: -len(kv[1])):
                sole = sum(1 for r in rs if len(r["ferry_reasons"]) == 1)
                out.append(
                    f"| {reason} | {bullet(reason)} | {len(rs)} | {sole} | {examples(rs)} |\n"
                )
        hidden = [r for r in f_ok if r.get("hidden_call_inputs")]
        if hidden:
            out.append(
                f"\nAccepted but with call inputs the engines expose and Ferry doesn't "
                f"(optional/defaulted `call.input`): {len(hidden)} of {len(f_ok)} accepted files, "
                f"{sum(len(r['hidden_call_inputs']) for r in hidden)} inputs; e.g. {examples(hidden, 2)}\n"
            )
        out.append("\n")
    out.append(cross_source(all_rows))
    head = (
        f"**All sources:** {totals['files']} .wdl files; {totals['skipped_invalid']} marked invalid "
        f"by their tests (skipped); {totals['tried']} tried; miniwdl refuses "
        f"{totals['miniwdl_refused']}, accepts {totals['miniwdl_ok']}; **Ferry accepts "
        f"{totals['ferry_ok']} of the {totals['miniwdl_ok']} miniwdl accepts** (refuses "
        f"{totals['ferry_refused']}). Documents with a workflow: {totals['wf']}, Ferry accepts "
        f"{totals['wf_ok']}. Entry files (imported by no other file): {totals['entry']}, Ferry "
        f"accepts {totals['entry_ok']}.\n\n"
    )
    return head + "".join(out)


def cross_source(rows: list[dict]) -> str:
    out = ["### Across sources\n\n"]
    tried = [r for r in rows if not r["womtool_invalid"] and r["centaur_format"] != "submitfailure"]
    refused = [r for r in tried if r["miniwdl_ok"] and not r["ferry_ok"]]
    ok = sum(1 for r in tried if r["miniwdl_ok"] and r["ferry_ok"])
    total = ok + len(refused)
    out.append("| if fixed | Ferry would accept (of miniwdl-accepted) |\n|---|---|\n")
    out.append(f"| nothing (today) | {ok} / {total} |\n")
    steps = [
        ("B1 nested call inputs", {"B1 nested call inputs"}),
        ("B2 every WDL type", {"B2 every WDL type"}),
        ("B3 single task runs", {"B3 single task runs"}),
        ("call.x output names (not in issue 13)", {"none (not in issue 13)"}),
    ]
    cumulative: set[str] = set()
    for label, fixed in steps:
        cumulative |= fixed
        out.append(
            f"| {label} alone | {ok + would_accept(refused, fixed)} / {total} |\n"
            f"| ...cumulative | {ok + would_accept(refused, cumulative)} / {total} |\n"
        )
    rest = [r for r in refused if not all(bullet(x) in cumulative for x in r["ferry_reasons"])]
    out.append(
        f"\nStill refused after all of these: {len(rest)} (task libraries, struct-only files, "
        f"crashes...): {examples(rest, 6)}\n\n"
    )
    # B4: import errors -- does Ferry name the import site as well as the cause?
    imp = [  # the error is inside an imported file (not a missing file or a URL)
        r
        for r in rows
        if not r["miniwdl_ok"]
        and r["miniwdl_error"].startswith("ImportError")
        and "<- " in r["miniwdl_error"]
        and "FileNotFoundError" not in r["miniwdl_error"]
        and not r["url_import"]
    ]

    def places(r: dict) -> set[str]:
        return {m.split(":", 1)[0] for m in r["ferry_messages"]}

    both = [
        r
        for r in imp
        if Path(r["path"]).name in {Path(p).name for p in places(r)} and len(places(r)) > 1
    ]
    out.append(
        f"**Import errors (B4)**: {len(imp)} files (any source, invalid ones included) fail "
        f"because of an error inside a file they import; Ferry's messages name both the import "
        f"site and the cause in {len(both)}: "
        + "; ".join(f"`{r['source']}/{r['path']}` → `{r['ferry_messages'][0][:150]}`" for r in imp)
        + "\n\n"
    )
    # B5: engines disagree
    cw = [r for r in rows if r["source"] == "cromwell"]
    cromwell_runs = [
        r
        for r in cw
        if not r["miniwdl_ok"]
        and not r["url_import"]
        and (
            r["centaur_format"].startswith(("workflowsuccess", "runtwice", "runthrice"))
            or "/valid/" in r["path"]
        )
    ]
    out.append(
        f"**Cromwell accepts, miniwdl refuses (B5)**: {len(cromwell_runs)} files Cromwell's own "
        "tests expect to run or validate (centaur success tests, womtool `valid/`; URL imports "
        "left out) are refused by miniwdl, hence by Ferry: "
        + "; ".join(
            f"`{Path(r['path']).name}` ({r['miniwdl_error'].splitlines()[0][:70]})"
            for r in cromwell_runs
        )
        + "\n\n"
    )
    womtool_no = [
        r
        for r in cw
        if r["womtool_invalid"]
        and r["miniwdl_ok"]
        and Path(r["path"]).stem == Path(r["path"]).parent.name
        and not (HERE / "cromwell" / r["path"]).with_suffix(".inputs.json").exists()
    ]
    out.append(
        f"**womtool refuses, miniwdl accepts (B5)**: {len(womtool_no)} womtool `invalid/` main "
        "files (input-JSON tests left out) load in miniwdl; Ferry accepts "
        f"{sum(1 for r in womtool_no if r['ferry_ok'])} of them, "
        f"{sum(1 for r in womtool_no if r['ferry_ok'] and r.get('womtool_warnings'))} with a "
        "womtool warning: "
        + "; ".join(
            f"`{r['path'].split('/validate/')[-1]}` (ferry_ok={r['ferry_ok']}, "
            f"warning: {(r.get('womtool_warnings') or ['none'])[0][:90]})"
            for r in womtool_no
        )
        + "\n\n"
    )
    # womtool warnings on files no test marks invalid (false alarms, or womtool-invalid
    # helpers nobody runs)
    warned = [
        r
        for r in rows
        if r.get("womtool_warnings")
        and not r["womtool_invalid"]
        and r["centaur_format"] != "submitfailure"
    ]
    out.append(
        f"**womtool warnings on files no test marks invalid**: {len(warned)}"
        + (": " if warned else "")
        + "; ".join(
            f"`{r['source']}/{r['path']}` ({r['womtool_warnings'][0][:90]})" for r in warned
        )
        + "\n\n"
    )
    crashes = [r for r in rows if r["ferry_code"] == "CRASH"]
    if crashes:
        out.append(
            "**Crashes** (uncaught exception in Ferry's check, a 500 through the API): "
            + "; ".join(
                f"`{r['source']}/{r['path']}`: {r['ferry_messages'][0][:80]}" for r in crashes
            )
            + "\n\n"
        )
    return "".join(out)


def main() -> None:
    results = HERE / "results.jsonl"
    if args.report_only:
        rows = [json.loads(line) for line in results.read_text().splitlines()]
    else:
        rows = []
        for source in args.sources:
            start = time.time()
            got = measure(source)
            print(f"{source}: {len(got)} files in {time.time() - start:.0f}s", file=sys.stderr)
            rows += got
        results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (HERE / "results.md").write_text(report(rows))
    print(report(rows))


if __name__ == "__main__":
    main()
