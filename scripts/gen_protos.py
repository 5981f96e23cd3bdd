"""Generate Python code for every .proto under protos/ into gen/ (messages, .pyi stubs, gRPC stubs)."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen"


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        print(f"protoc failed ({code})", file=sys.stderr)
        return code
    # Generated modules import each other as steward.<svc>.v1.*: make every folder a package.
    for folder in [OUT, *(p for p in OUT.rglob("*") if p.is_dir())]:
        if folder != OUT:
            (folder / "__init__.py").touch()
    print(f"generated {len(files)} proto files into {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
