"""What ``marconi-cli`` prints: JSON documents, aligned tables, progress."""

import json


def dump_json(document):
    """Stable JSON for scripts: sorted keys, two-space indent, UTF-8 text."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def compact(value, width=None):
    """``value`` as one line of compact JSON, cut to ``width`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True)
    if width is not None and len(text) > width:
        text = text[:width - 3] + "..."
    return text


def table(headers, rows):
    """Rows of cells under headers, left-aligned in columns two spaces apart."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells])
              for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers)] + cells:
        lines.append("  ".join(cell.ljust(width) for cell, width in
                               zip(row, widths)).rstrip())
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar redrawn in place (only meant for a terminal)."""

    def __init__(self, stream, label, width=30):
        self.stream, self.label, self.width = stream, label, width

    def update(self, done, total):
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()

    def finish(self):
        self.stream.write("\n")
        self.stream.flush()
