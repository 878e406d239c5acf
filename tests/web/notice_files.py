"""Files for the notice tests, made at test time: a minimal valid PDF, a PNG photo, and fakes."""

from __future__ import annotations

import struct
import zlib


def pdf_bytes(text: str = "Typhoon checklist") -> bytes:
    """A small but well-formed one-page PDF (header, objects, xref, trailer, startxref, EOF)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def png_bytes(width: int = 8, height: int = 8, pad_to: int = 0) -> bytes:
    """A valid RGB PNG; ``pad_to`` appends an ancillary chunk to reach that size in bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x30\x80\xc0" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
    )
    if pad_to > len(png):
        png += chunk(b"tEXt", b"c\x00" + b"x" * (pad_to - len(png)))
    return png + chunk(b"IEND", b"")


FAKE_PDF = b"%PDF-1.4\nthis is a renamed text file, not a PDF\n"
TEXT_FILE = b"hello, I am only text\n" * 20
