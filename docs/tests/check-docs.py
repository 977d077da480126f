#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the docs and abi/pallet/provider.h describe the same ABI.

usage: check-docs.py HEADER DOCS_DIR [--pallet PALLET_BINARY]
       check-docs.py --self-test HEADER DOCS_DIR

From the header it takes the ops (function-pointer members of struct
pallet_provider), the members of struct pallet_host, the members of enum
pallet_status (without PALLET_E_LAST) and, for each, the "Added in ABI x.y"
group it sits in.  It then checks:
  - docs/ops/ holds exactly one page per op;
  - every op page has front matter with Added-in and See-also, every
    required section, a SYNOPSIS naming its typedef, a JSON OUTPUT linking
    a schema, and a HISTORY saying "Added in ABI x.y" for the header's group;
  - docs/status-codes.md names every status with its number and retry
    class, and no other PALLET_ status name;
  - docs/host-services.md has one section per struct pallet_host member;
  - docs/provider-guide.md names every op;
  - with --pallet: the verbs in docs/pallet.1 and `pallet --help` agree.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "JSON INPUT", "JSON OUTPUT",
            "RETURN VALUE", "EXAMPLE", "HISTORY"]
EMITTING_OPS = set()
RETRYABLE = {"PALLET_PENDING", "PALLET_E_TRANSIENT", "PALLET_E_TIMEOUT"}


def strip_comments_keep_added_in(text):
    """Replaces each comment by a marker if it is an 'Added in ABI' one."""
    def repl(m):
        a = re.search(r"Added(?: in|-in:) ABI (\d+\.\d+)", m.group(0))
        return " @ADDED_IN(%s)@ " % a.group(1) if a else " "
    return re.sub(r"/\*.*?\*/", repl, text, flags=re.S)


def struct_body(text, name):
    m = re.search(r"^struct %s\s*\{(.*?)^\};" % re.escape(name), text,
                  re.S | re.M)
    if not m:
        raise SystemExit("FAIL: header: no definition of struct %s" % name)
    return m.group(1)


def members(body):
    """[(name, is_fn_pointer, added_in)] in order; added_in None before the
    first marker."""
    out = []
    group = None
    for stmt in re.split(r";", body):
        for g in re.findall(r"@ADDED_IN\((\d+\.\d+)\)@", stmt):
            group = g
        stmt = re.sub(r"@ADDED_IN\([^)]*\)@", " ", stmt).strip()
        stmt = re.sub(r"PALLET_PRINTF\s*\([^)]*\)", " ", stmt).strip()
        if not stmt:
            continue
        fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(", stmt)
        if fp:
            out.append((fp.group(1), True, group))
            continue
        typed = re.match(r"^pallet_\w+_fn\s*\*\s*([A-Za-z_]\w*)$", stmt)
        if typed:
            out.append((typed.group(1), True, group))
            continue
        plain = re.search(r"([A-Za-z_]\w*)\s*$", stmt)
        if not plain:
            raise SystemExit("FAIL: header: cannot parse member %r" % stmt)
        out.append((plain.group(1), False, group))
    return out


def parse_header(path):
    with open(path, encoding="utf-8") as f:
        text = strip_comments_keep_added_in(f.read())
    vt = members(struct_body(text, "pallet_provider"))
    ops = [(n, g) for n, fp, g in vt if fp]
    # Ops whose typedef takes a struct pallet_call can emit, so their page
    # must link a schema.
    global EMITTING_OPS
    EMITTING_OPS = set(re.findall(
        r"typedef[^;]*?\(pallet_(\w+)_fn\)\s*\([^;]*struct pallet_call", text))
    host = [(n, g) for n, fp, g in members(struct_body(text, "pallet_host"))]
    # The codes are the X (NAME, number, text) entries of
    # PALLET_STATUS_LIST, which generates enum pallet_status.
    m = re.search(r"#define PALLET_STATUS_LIST\(X\)(.*?[^\\])\n", text, re.S)
    if not m:
        raise SystemExit("FAIL: header: no PALLET_STATUS_LIST")
    status = {}
    for name, num in re.findall(r"\bX \((\w+), (\d+),", m.group(1)):
        status["PALLET_" + name] = int(num)
    if not ops or not host or not status:
        raise SystemExit("FAIL: header: found no ops, host members or status")
    for n, g in ops + host:
        if n not in ("abi_major", "abi_minor", "struct_size") and g is None:
            raise SystemExit("FAIL: header: member %s is in no 'Added in ABI' "
                             "group" % n)
    return ops, host, status


def front_matter(text):
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not m:
        return None, text
    fields = {}
    key = None
    for line in m.group(1).splitlines():
        kv = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if kv:
            key = kv.group(1)
            fields[key] = kv.group(2).strip()
        elif key and line.strip().startswith("-"):
            fields[key] = (fields[key] + " " + line.strip()[1:].strip()).strip()
    return fields, text[m.end():]


def sections(body):
    """{heading: text} for '# HEADING' lines (curldown level 1)."""
    parts = re.split(r"^# (.+?)\s*$", body, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def check_op_page(path, op, added, errors):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    fm, body = front_matter(text)
    if fm is None:
        errors.append("%s: no front matter (--- ... ---)" % name)
        return
    want = "ABI %s" % added
    if fm.get("Added-in") != want:
        errors.append("%s: front matter Added-in is %r; the header puts .%s in "
                      "the 'Added in %s' group" % (name, fm.get("Added-in"),
                                                   op, want))
    if not fm.get("See-also"):
        errors.append("%s: front matter has no See-also" % name)
    secs = sections(body)
    for s in SECTIONS:
        if s not in secs:
            errors.append("%s: missing section '# %s'" % (name, s))
    got = [s for s in secs if s in SECTIONS]
    if got != [s for s in SECTIONS if s in secs]:
        errors.append("%s: sections out of order: %s" % (name, got))
    if "SYNOPSIS" in secs and "pallet_%s_fn" % op not in secs["SYNOPSIS"]:
        errors.append("%s: SYNOPSIS does not name pallet_%s_fn" % (name, op))
    if "JSON OUTPUT" in secs and op in EMITTING_OPS and not re.search(
            r"\]\((\.\./)?schemas/[\w-]+\.schema\.json\)", secs["JSON OUTPUT"]):
        errors.append("%s: JSON OUTPUT links no schemas/*.schema.json" % name)
    if "JSON OUTPUT" in secs:
        check_output_examples(name, secs["JSON OUTPUT"], os.path.dirname(path),
                              errors)
    if "HISTORY" in secs:
        hist = re.findall(r"Added in ABI (\d+\.\d+)", secs["HISTORY"])
        if hist != [added]:
            errors.append("%s: HISTORY says Added in ABI %s; the header says "
                          "%s" % (name, hist or "nothing", added))


def json_values(text):
    """The JSON values in a block: one, or several one after another."""
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        v, i = dec.raw_decode(text, i)
        out.append(v)


def check_output_examples(name, section, opdir, errors):
    """Each ```json block of JSON OUTPUT must validate against the schema
    linked last before it."""
    try:
        import jsonschema
    except ImportError:
        raise SystemExit("FAIL: python3-jsonschema is missing; run "
                         "./scripts/install-deps.sh")
    schema = None
    pos = 0
    token = re.compile(r"\]\(((?:\.\./)?schemas/[\w-]+\.schema\.json)\)"
                       r"|^```json\s*\n(.*?)^```\s*$", re.M | re.S)
    for m in token.finditer(section, pos):
        if m.group(1):
            f = os.path.normpath(os.path.join(opdir, m.group(1)))
            if not os.path.exists(f):
                errors.append("%s: JSON OUTPUT links %s, which does not exist"
                              % (name, m.group(1)))
                schema = None
                continue
            with open(f, encoding="utf-8") as fh:
                schema = (m.group(1), json.load(fh))
            continue
        if schema is None:
            errors.append("%s: a JSON OUTPUT example comes before any schema "
                          "link" % name)
            continue
        try:
            values = json_values(m.group(2))
        except ValueError as e:
            errors.append("%s: a JSON OUTPUT example is not JSON: %s" % (name, e))
            continue
        cls = jsonschema.validators.validator_for(schema[1])
        for v in values:
            for e in cls(schema[1]).iter_errors(v):
                errors.append("%s: JSON OUTPUT example does not match %s: %s"
                              % (name, schema[0], e.message))


def check_status(path, status, errors):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # The retirement pattern PALLET_E_OBSOLETE<n> is a rule, not a code.
    text = text.replace("PALLET_E_OBSOLETE<n>", "")
    named = set(re.findall(r"\bPALLET_(?:OK|PENDING|E_\w+)\b", text))
    for s in sorted(set(status) - named):
        errors.append("status-codes.md: does not name %s" % s)
    for s in sorted(named - set(status)):
        errors.append("status-codes.md: names %s, which enum pallet_status "
                      "does not have (or must not list)" % s)
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in status:
            rows[cells[0]] = cells
    for s, num in status.items():
        row = rows.get(s)
        if row is None:
            errors.append("status-codes.md: no table row for %s" % s)
            continue
        if row[1] != str(num):
            errors.append("status-codes.md: %s has number %s; the header "
                          "says %d" % (s, row[1], num))
        cls = "retryable" if s in RETRYABLE else "permanent"
        if s == "PALLET_OK":
            cls = "success"
        if cls not in row[2].lower():
            errors.append("status-codes.md: %s must be marked %s (column 3 "
                          "is %r)" % (s, cls, row[2]))


def check_host(path, host, errors):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    heads = re.findall(r"^##\s+`?(\w+)`?", text, re.M)
    for n, _ in host:
        if heads.count(n) != 1:
            errors.append("host-services.md: needs exactly one '## %s' "
                          "section (found %d)" % (n, heads.count(n)))
    extra = set(heads) - {n for n, _ in host}
    for n in sorted(extra):
        errors.append("host-services.md: section '## %s' is not a member of "
                      "struct pallet_host" % n)


def check_links(docs, errors):
    """Every relative Markdown link points at a file or directory that
    exists."""
    pages = glob.glob(os.path.join(docs, "*.md")) + \
        glob.glob(os.path.join(docs, "ops", "*.md"))
    for page in sorted(pages):
        with open(page, encoding="utf-8") as f:
            text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page),
                                                 target.split("#")[0]))
            if not os.path.exists(path):
                errors.append("%s: link to %s, which does not exist"
                              % (os.path.relpath(page, docs), target))


def man_verbs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\.SH COMMANDS\s*$(.*?)^\.SH ", text, re.M | re.S)
    if not m:
        raise SystemExit("FAIL: pallet.1 has no .SH COMMANDS section")
    return set(re.findall(r"^\.TP\s*\n\.B\s+(\w[\w-]*)", m.group(1), re.M))


def man_options(path):
    """Long options in the roff source, where '-' is written '\\-'."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\-", "-")
    return set(re.findall(r"(?<![\w-])--([a-z][a-z-]*[a-z])", text))


def accepts_option(pallet, opt):
    """getopt says 'unrecognized option' for an option it does not know;
    the verbs that parse their own options say 'unknown option'."""
    r = subprocess.run([pallet, "--" + opt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    if "unrecognized option" not in r.stdout:
        return True
    for verb in ("get", "describe", "inventory", "create"):
        r = subprocess.run([pallet, verb, "--" + opt], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if "unknown option" not in r.stdout:
            return True
    return False


def pallet_help(pallet):
    r = subprocess.run([pallet, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit("FAIL: `pallet --help` exited %d:\n%s"
                         % (r.returncode, r.stdout))
    return r


def help_options(pallet):
    return set(re.findall(r"(?<![\w-])--([a-z][a-z-]*[a-z])", pallet_help(pallet).stdout))


def help_verbs(pallet):
    r = pallet_help(pallet)
    # The verb list: lines indented by exactly two spaces after a "Verbs:"
    # (or "Commands:") line, up to the next unindented line.
    m = re.search(r"^(?:verbs|commands):\s*$(.*?)(?:^\S|\Z)", r.stdout,
                  re.M | re.S | re.I)
    if not m:
        raise SystemExit("FAIL: `pallet --help` has no 'Verbs:' list:\n"
                         + r.stdout)
    verbs = set(re.findall(r"^  ([a-z][\w-]*)", m.group(1), re.M))
    if not verbs:
        raise SystemExit("FAIL: `pallet --help` lists no verbs:\n" + r.stdout)
    return verbs


def check(header, docs, pallet=None):
    ops, host, status = parse_header(header)
    errors = []
    opdir = os.path.join(docs, "ops")
    pages = sorted(f[:-3] for f in os.listdir(opdir) if f.endswith(".md"))
    names = [n for n, _ in ops]
    for n in sorted(set(names) - set(pages)):
        errors.append("ops/: no page %s.md for op .%s" % (n, n))
    for p in sorted(set(pages) - set(names)):
        errors.append("ops/%s.md: the vtable has no op %s" % (p, p))
    for n, g in ops:
        if n in pages:
            check_op_page(os.path.join(opdir, n + ".md"), n, g, errors)
    check_status(os.path.join(docs, "status-codes.md"), status, errors)
    check_host(os.path.join(docs, "host-services.md"), host, errors)
    with open(os.path.join(docs, "provider-guide.md"), encoding="utf-8") as f:
        guide = f.read()
    for n in names:
        if "`%s`" % n not in guide:
            errors.append("provider-guide.md: never names `%s`" % n)
    check_links(docs, errors)
    if pallet:
        mv, hv = man_verbs(os.path.join(docs, "pallet.1")), help_verbs(pallet)
        print("verbs: pallet.1 %s; pallet --help %s"
              % (" ".join(sorted(mv)), " ".join(sorted(hv))))
        for v in sorted(mv - hv):
            errors.append("pallet.1 documents verb %r; `pallet --help` does "
                          "not list it" % v)
        for v in sorted(hv - mv):
            errors.append("`pallet --help` lists verb %r; pallet.1 does not "
                          "document it" % v)
        mo, ho = man_options(os.path.join(docs, "pallet.1")), help_options(pallet)
        for o in sorted(ho - mo):
            errors.append("`pallet --help` lists option --%s; pallet.1 does "
                          "not document it" % o)
        for o in sorted(mo - ho):
            if not accepts_option(pallet, o):
                errors.append("pallet.1 documents option --%s; pallet does "
                              "not accept it" % o)
            else:
                print("note: pallet accepts --%s but `pallet --help` does not "
                      "list it" % o)
    return (names, [n for n, _ in host], status), errors


def self_test(header, docs):
    """Breaks a copy of the docs in known ways; each must be caught."""
    def broken(mutate):
        with tempfile.TemporaryDirectory() as tmp:
            d = os.path.join(tmp, "docs")
            shutil.copytree(docs, d, ignore=shutil.ignore_patterns(
                "tests", "*.txt"))
            # The guide links into sibling directories of docs/.
            for sib in ("examples", "conformance"):
                real = os.path.join(os.path.dirname(os.path.abspath(docs)), sib)
                if os.path.isdir(real):
                    os.symlink(real, os.path.join(tmp, sib))
            if check(header, d)[1]:
                raise SystemExit("FAIL: self-test: the unbroken copy fails")
            mutate(d)
            return check(header, d)[1]

    def edit(path, old, new):
        with open(path, encoding="utf-8") as f:
            t = f.read()
        if old not in t:
            raise SystemExit("FAIL: self-test: %r not in %s" % (old, path))
        with open(path, "w", encoding="utf-8") as f:
            f.write(t.replace(old, new, 1))

    cases = {
        "missing op page": lambda d: os.unlink(os.path.join(d, "ops", "convert.md")),
        "extra op page": lambda d: shutil.copy(os.path.join(d, "ops", "convert.md"),
                                               os.path.join(d, "ops", "resize.md")),
        "wrong Added-in": lambda d: edit(os.path.join(d, "ops", "transfer.md"),
                                         "Added-in: ABI 1.0", "Added-in: ABI 1.1"),
        "wrong HISTORY": lambda d: edit(os.path.join(d, "ops", "cleanup.md"),
                                        "Added in ABI 1.0", "Added in ABI 1.2"),
        "missing section": lambda d: edit(os.path.join(d, "ops", "open.md"),
                                          "# RETURN VALUE", "# RETURNS"),
        "status missing": lambda d: edit(os.path.join(d, "status-codes.md"),
                                         "PALLET_E_CONFLICT", "PALLET_CONFLICT_X"),
        "status renumbered": lambda d: edit(os.path.join(d, "status-codes.md"),
                                            "| `PALLET_E_IO` | 11 |",
                                            "| `PALLET_E_IO` | 12 |"),
        "unknown status": lambda d: edit(os.path.join(d, "status-codes.md"),
                                         "# Status codes", "# Status codes\n\nPALLET_E_LAST"),
        "example off schema": lambda d: edit(os.path.join(d, "ops", "validate.md"),
                                             '"category": "Error"', '"category": "Severe"'),
        "example not JSON": lambda d: edit(os.path.join(d, "ops", "cleanup.md"),
                                           '"action": "deleted" }', '"action": deleted }'),
        "broken link": lambda d: edit(os.path.join(d, "provider-guide.md"),
                                      "(ops/transfer.md)", "(ops/transfr.md)"),
        "host member missing": lambda d: edit(os.path.join(d, "host-services.md"),
                                              "## retry_after", "## retry"),
    }
    # A header that gains an op in ABI 1.1: the docs must notice.
    with tempfile.TemporaryDirectory() as tmp:
        h = os.path.join(tmp, "provider.h")
        with open(header, encoding="utf-8") as f:
            t = f.read()
        marker = "  /* Added in ABI 1.2: append here. */\n"
        if marker not in t:
            raise SystemExit("FAIL: self-test: the header's vtable tail changed; "
                             "update the self-test")
        with open(h, "w", encoding="utf-8") as f:
            f.write(t.replace(marker, marker + "  /* Added in ABI 1.2 */\n  pallet_cleanup_fn *resize;\n"))
        errs = check(h, docs)[1]
    print("self-test: %-20s -> %s" % ("new op in header", "caught: " + errs[0]
                                      if errs else "NOT CAUGHT"))
    ok = bool(errs)
    if check(header, docs)[1]:
        print("self-test: the real docs must pass first")
        return False
    for what, mutate in cases.items():
        errs = broken(mutate)
        print("self-test: %-20s -> %s" % (what, "caught: " + errs[0] if errs
                                          else "NOT CAUGHT"))
        ok = ok and bool(errs)
    return ok


def main():
    args = sys.argv[1:]
    if args and args[0] == "--self-test":
        if len(args) != 3:
            raise SystemExit(__doc__)
        sys.exit(0 if self_test(args[1], args[2]) else 1)
    pallet = None
    if "--pallet" in args:
        i = args.index("--pallet")
        pallet = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    (ops, host, status), errors = check(args[0], args[1], pallet)
    print("header: ops %s" % ", ".join(ops))
    print("header: host members %s" % ", ".join(host))
    print("header: %d status codes" % len(status))
    for e in errors:
        print("FAIL: " + e)
    if errors:
        sys.exit(1)
    print("ok: docs match the header")


if __name__ == "__main__":
    main()
