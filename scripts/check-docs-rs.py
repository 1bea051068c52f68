#!/usr/bin/env python3
"""Builds the documentation the way docs.rs does, on a machine without libtorch.

docs.rs has no libtorch, so the crate's `[package.metadata.docs.rs]` asks for the `doc-only`
feature, which tch passes to torch-sys, whose build script then does nothing. This script reads
that table from `cargo metadata` and runs the `cargo doc` it describes with every libtorch
variable (`LIBTORCH*`, `LD_LIBRARY_PATH`, the virtualenv of scripts/env.sh) removed from the
environment, `DOCS_RS=1` and `--cfg docsrs` as docs.rs sets them, and rustdoc warnings as errors.
Without `doc-only`, torch-sys's build script would stop with "Cannot find a libtorch install"
here, so a passing run shows that the docs.rs build needs no libtorch.

    python3 scripts/check-docs-rs.py        # output in target/docs-rs/<target>/doc

Run it directly, not through scripts/env.sh (it would clear that environment anyway).
"""

import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    cargo = shutil.which("cargo")
    if cargo is None:
        print("check-docs-rs: no cargo on PATH", file=sys.stderr)
        return 2
    meta = json.loads(
        subprocess.run(
            [cargo, "metadata", "--format-version", "1", "--no-deps", "--locked"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
        ).stdout
    )
    package = meta["packages"][0]
    # `[package.metadata.docs.rs]` is the table `docs`, key `rs`, in cargo's JSON.
    docs_rs = ((package.get("metadata") or {}).get("docs") or {}).get("rs")
    if not docs_rs:
        print("check-docs-rs: Cargo.toml has no [package.metadata.docs.rs]", file=sys.stderr)
        return 1
    features = docs_rs.get("features", [])
    if "doc-only" not in features:
        print(
            "check-docs-rs: [package.metadata.docs.rs] must enable `doc-only` (docs.rs has no "
            "libtorch)",
            file=sys.stderr,
        )
        return 1
    targets = docs_rs.get("targets") or [docs_rs.get("default-target", "x86_64-unknown-linux-gnu")]

    # A clean environment: what cargo and the C compiler of the -sys crates need, nothing of
    # libtorch. PATH keeps cargo's directory and the system's, not the virtualenv's.
    env = {k: os.environ[k] for k in ("HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN",
                                     "LANG", "TERM", "CI") if k in os.environ}
    env["PATH"] = os.pathsep.join(
        [os.path.dirname(cargo), "/usr/local/bin", "/usr/bin", "/bin"]
    )
    env["DOCS_RS"] = "1"
    env["CARGO_TARGET_DIR"] = os.path.join(ROOT, "target", "docs-rs")
    env["RUSTDOCFLAGS"] = " ".join(["--cfg", "docsrs", "-D", "warnings"]
                                   + docs_rs.get("rustdoc-args", []))
    if docs_rs.get("rustc-args"):
        env["RUSTFLAGS"] = " ".join(docs_rs["rustc-args"])
    gone = sorted(k for k in os.environ if k.startswith("LIBTORCH") or k in (
        "LD_LIBRARY_PATH", "VIRTUAL_ENV", "TCH_PRUNE_PYTHON"))
    if gone:
        print(f"check-docs-rs: removed from the environment: {', '.join(gone)}")

    cmd = [cargo, "doc", "--no-deps", "--locked", "--target", targets[0]]
    if docs_rs.get("all-features"):
        cmd.append("--all-features")
    if docs_rs.get("no-default-features"):
        cmd.append("--no-default-features")
    if features:
        cmd += ["--features", ",".join(features)]
    print(f"check-docs-rs: {' '.join(cmd[1:])} (RUSTDOCFLAGS={env['RUSTDOCFLAGS']!r})",
          flush=True)
    status = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    if status != 0:
        print("check-docs-rs: FAILED: the docs.rs build does not pass", file=sys.stderr)
        return 1
    index = os.path.join(env["CARGO_TARGET_DIR"], targets[0], "doc", "tch_prune", "index.html")
    if not os.path.exists(index):
        print(f"check-docs-rs: FAILED: {index} was not written", file=sys.stderr)
        return 1
    print(f"check-docs-rs: ok, {os.path.relpath(index, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
