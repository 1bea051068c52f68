#!/usr/bin/env python3
"""Fails when a package of the locked dependency graph needs a newer Rust than the crate declares.

Reads `cargo metadata --locked --all-features` (no other toolchain needed) and walks the resolved
graph from this crate: normal, build and dev-dependencies, every feature, every target platform
(a user on another OS gets that platform's dependencies, so they count too). Each package's
`rust-version` (or, when it has none, the first Rust that knows its edition) must not exceed the
crate's own `rust-version`. (Reading every platform's manifests makes cargo download the
Windows and WebAssembly crates of the lock too, about 12 MB, once.)

    python3 scripts/check-msrv.py                      # this checkout's Cargo.lock
    python3 scripts/check-msrv.py --manifest-path P    # another copy (the tch 0.24 lock)

Exit status 0 when everything fits, 1 when a package needs more (each one is listed with the
chain of dependencies that reaches it), 2 when cargo fails (e.g. Cargo.lock is out of date).

What this cannot see: packages that declare no `rust-version` (listed on stderr; tch and
torch-sys are among them) are only held to their edition, and the crate's own code is held to
its `rust-version` by clippy's `incompatible_msrv` lint (standard-library APIs), not by this
script.
"""

import argparse
import json
import subprocess
import sys
from collections import deque

# The first stable Rust of each edition: a package without `rust-version` needs at least this.
EDITION_MSRV = {"2015": "1.0", "2018": "1.31", "2021": "1.56", "2024": "1.85"}


def version_key(text):
    """`"1.88"` / `"1.88.0"` as a comparable tuple `(1, 88, 0)`."""
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest-path", help="Cargo.toml of the crate (default: this checkout)")
    parser.add_argument("--cargo", default="cargo", help="the cargo command to run (default: cargo)")
    args = parser.parse_args()

    cmd = [args.cargo, "metadata", "--format-version", "1", "--locked", "--all-features"]
    if args.manifest_path:
        cmd += ["--manifest-path", args.manifest_path]
    try:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"check-msrv: `{' '.join(cmd)}` failed: {e}", file=sys.stderr)
        return 2
    meta = json.loads(out)

    packages = {p["id"]: p for p in meta["packages"]}
    root_id = meta["resolve"]["root"]
    root = packages[root_id]
    declared = root.get("rust_version")
    if not declared:
        print(f"check-msrv: {root['name']} declares no rust-version", file=sys.stderr)
        return 1
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

    # Breadth-first from the root, remembering how each package was reached. The resolve graph
    # holds the root's dev-dependencies but not those of other packages, as cargo builds them.
    parent = {root_id: None}
    queue = deque([root_id])
    while queue:
        node = nodes[queue.popleft()]
        for dep in node["deps"]:
            if dep["pkg"] not in parent:
                parent[dep["pkg"]] = node["id"]
                queue.append(dep["pkg"])

    def chain(pkg_id):
        names = []
        while pkg_id is not None:
            p = packages[pkg_id]
            names.append(f"{p['name']} {p['version']}")
            pkg_id = parent[pkg_id]
        return " <- ".join(names)

    too_new, undeclared, newest = [], [], []  # newest: the packages with the highest need
    for pkg_id in parent:
        if pkg_id == root_id:
            continue
        p = packages[pkg_id]
        needs = p.get("rust_version")
        if not needs:
            undeclared.append(f"{p['name']} {p['version']}")
            needs = EDITION_MSRV.get(p["edition"], "1.0")
        if not newest or version_key(needs) > version_key(newest[0][0]):
            newest = [(needs, pkg_id)]
        elif version_key(needs) == version_key(newest[0][0]):
            newest.append((needs, pkg_id))
        if version_key(needs) > version_key(declared):
            too_new.append((version_key(needs), needs, pkg_id))

    label = args.manifest_path or "Cargo.toml"
    print(
        f"check-msrv: {label}: rust-version {declared}; {len(parent) - 1} locked packages reached "
        f"(all features, all platforms, dev-dependencies included)"
    )
    if newest:
        print(f"check-msrv: the newest requirement is {newest[0][0]}, from:")
        for _, pkg_id in newest:
            print(f"  {chain(pkg_id)}")
    if undeclared:
        print(
            f"check-msrv: {len(undeclared)} packages declare no rust-version (held to their "
            f"edition only): {', '.join(sorted(undeclared))}",
            file=sys.stderr,
        )
    if too_new:
        print(f"check-msrv: FAILED: these locked packages need more than {declared}:")
        for _, needs, pkg_id in sorted(too_new, reverse=True):
            print(f"  {needs}: {chain(pkg_id)}")
        print(
            "Raise `rust-version` in Cargo.toml to the highest of these (and say so in "
            "CHANGELOG.md), or pin those packages to older versions with "
            "`cargo update -p NAME --precise VERSION`."
        )
        return 1
    if newest and version_key(newest[0][0]) < version_key(declared):
        print(
            f"check-msrv: note: no dependency needs {declared}; the declared version is then set "
            f"by the crate's own code (clippy's incompatible_msrv lint checks it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
