"""Execute a notebook headlessly in a real kernel and print what its cells printed."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(path: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
    ).execute()
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    for output in last.get("outputs", []):
        if output.output_type == "stream":
            print(output.text, end="")
        elif "text/plain" in output.get("data", {}):
            print(output["data"]["text/plain"])


if __name__ == "__main__":
    main(sys.argv[1])
