"""PDF renderings of the register and of a recording's custody report (reportlab).

French by default; in English when the user who asks for one reads the interface in English (issue 20):
the request's language is active while they are rendered, and every text here goes through gettext.
Packages for courts and data subjects render them in French (evidence/disclosure/package.py).
French text with accents: DejaVu Sans (Debian's fonts-dejavu-core) is embedded when present;
otherwise reportlab's Helvetica, whose WinAnsi encoding covers French.
"""
from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]
_fonts: tuple[str, str, str] | None = None


def fonts() -> tuple[str, str, str]:
    """(regular, bold, monospace) font names, registered once."""
    global _fonts
    if _fonts is None:
        _fonts = ("Helvetica", "Helvetica-Bold", "Courier")
        for d in FONT_DIRS:
            files = {"DejaVuSans": d / "DejaVuSans.ttf", "DejaVuSans-Bold": d / "DejaVuSans-Bold.ttf",
                     "DejaVuSansMono": d / "DejaVuSansMono.ttf"}
            if all(p.exists() for p in files.values()):
                for name, path in files.items():
                    pdfmetrics.registerFont(TTFont(name, str(path)))
                _fonts = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono")
                break
    return _fonts


def _styles():
    regular, bold, mono = fonts()
    return {
        "title": ParagraphStyle("title", fontName=bold, fontSize=14, leading=18, spaceAfter=4),
        "h2": ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=11),
        "small": ParagraphStyle("small", fontName=regular, fontSize=7.5, leading=9.5),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=7.5, leading=9),
        "head": ParagraphStyle("head", fontName=bold, fontSize=7.5, leading=9, textColor=colors.HexColor("#5b6575")),
        "mono": ParagraphStyle("mono", fontName=mono, fontSize=6.5, leading=8),
        "ok": ParagraphStyle("ok", fontName=bold, fontSize=10, leading=13, textColor=colors.HexColor("#1d7a3e")),
        "bad": ParagraphStyle("bad", fontName=bold, fontSize=10, leading=13, textColor=colors.HexColor("#b3261e")),
    }


def p(text, style) -> Paragraph:
    return Paragraph(escape(str(text if text is not None else "—")).replace("\n", "<br/>"), style)


def hash_cell(value: str, style) -> Paragraph:
    # 64 hex digits do not wrap by themselves: break them in two halves.
    value = value or "—"
    return Paragraph(escape(value[:32] + ("\n" + value[32:] if len(value) > 32 else "")).replace("\n", "<br/>"), style)


_TABLE = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#d9dee7")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f6")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
])
_FIELDS = TableStyle([
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d9dee7")),
    ("LEFTPADDING", (0, 0), (-1, -1), 2), ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
])


def _footer(text: str):
    regular = fonts()[0]

    def draw(canvas, doc):
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.setFillColor(colors.HexColor("#5b6575"))
        canvas.drawString(doc.leftMargin, 8 * mm, text)
        canvas.drawRightString(doc.pagesize[0] - doc.rightMargin, 8 * mm, _("page %(n)s") % {"n": doc.page})
        canvas.restoreState()

    return draw


def _build(story, *, pagesize, title: str, footer: str) -> bytes:
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=pagesize, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=14 * mm, title=title, author="Témoin", creator="Témoin")
    doc.build(story, onFirstPage=_footer(footer), onLaterPages=_footer(footer))
    return buf.getvalue()


def register_pdf(*, rows: list[dict], organisation: str, generated: str, filters: str, truncated: int = 0) -> bytes:
    """rows: dicts with seq, when, author, kind, action, recording, motif, recipients, details."""
    s = _styles()
    title = _("Registre des consultations, extractions et effacements")
    story = [
        p(title, s["title"]),
        p(_("%(organisation)s — CSI R241-14 : journal conservé trois ans, présenté à la CNIL sur demande.")
          % {"organisation": organisation}, s["body"]),
        p(_("Extraction : %(generated)s. Filtres : %(filters)s. %(count)s entrée(s).")
          % {"generated": generated, "filters": filters or _("aucun"), "count": len(rows)}, s["small"]),
        Spacer(1, 4 * mm),
    ]
    if truncated:
        story.append(p(_("%(count)s entrée(s) de plus ne figurent pas dans ce PDF : utiliser l'export CSV.")
                       % {"count": truncated}, s["bad"]))
    head = [_("N°"), _("Date et heure"), _("Auteur"), _("Nature"), _("Opération"), _("Enregistrement"), _("Motif"),
            _("Destinataires"), _("Précisions")]
    data = [[p(h, s["head"]) for h in head]]
    for r in rows:
        data.append([p(r["seq"], s["cell"]), p(r["when"], s["cell"]), p(r["author"], s["cell"]),
                     p(r["kind"], s["cell"]), p(r["action"], s["cell"]), p(r["recording"] or "—", s["cell"]),
                     p(r["motif"] or "—", s["cell"]), p(r["recipients"] or "—", s["cell"]),
                     p(r["details"] or "", s["small"])])
    widths = [12 * mm, 26 * mm, 30 * mm, 20 * mm, 32 * mm, 20 * mm, 45 * mm, 35 * mm, 53 * mm]
    story.append(Table(data, colWidths=widths, repeatRows=1, style=_TABLE))
    return _build(story, pagesize=landscape(A4), title=title,
                  footer=_("Témoin — registre — %(organisation)s — %(generated)s")
                  % {"organisation": organisation, "generated": generated})


def custody_report_pdf(report: dict) -> bytes:
    """report: the context built by audit.selectors.recording_custody_report."""
    s = _styles()
    r = report
    story = [p(_("Rapport de traçabilité — enregistrement n° %(n)s") % {"n": r["recording"].pk}, s["title"]),
             p(_("%(organisation)s — édité le %(generated)s par %(author)s.") % {
                 "organisation": r["organisation"], "generated": r["generated"], "author": r["generated_by"]},
               s["small"]),
             Spacer(1, 3 * mm), p(_("Identifiants"), s["h2"])]
    story.append(Table([[p(k, s["head"]), p(v, s["cell"])] for k, v in r["identifiers"]],
                       colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(p(_("Empreintes (SHA-256)"), s["h2"]))
    story.append(Table([[p(k, s["head"]), hash_cell(v, s["mono"]) if v and len(v) == 64 else p(v, s["cell"])]
                        for k, v in r["hashes"]], colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(p(_("Vérification du journal de traçabilité"), s["h2"]))
    v = r["verification"]
    story.append(p(v["headline"], s["ok"] if v["ok"] else s["bad"]))
    for line in v["lines"]:
        story.append(p(line, s["body"]))
    story.append(p(_("Événements (%(count)s)") % {"count": len(r["events"])}, s["h2"]))
    data = [[p(h, s["head"]) for h in (_("N°"), _("Date et heure"), _("Auteur"), _("Opération"),
                                       _("Motif, destinataires, précisions"), _("Empreinte"))]]
    for e in r["events"]:
        text = "\n".join(x for x in (e["motif"] and _("Motif : %(motif)s") % {"motif": e["motif"]},
                                     e["recipients"] and _("Destinataires : %(recipients)s") % {
                                         "recipients": e["recipients"]}, e["details"]) if x)
        data.append([p(e["seq"], s["cell"]), p(e["when"], s["cell"]), p(e["author"], s["cell"]),
                     p(e["action"], s["cell"]), p(text or "—", s["small"]), hash_cell(e["hash"], s["mono"])])
    story.append(Table(data, colWidths=[11 * mm, 25 * mm, 28 * mm, 30 * mm, 56 * mm, 36 * mm], repeatRows=1,
                       style=_TABLE))
    story.append(Spacer(1, 4 * mm))
    story.append(p(r["how_to_verify"], s["small"]))
    return _build(story, pagesize=A4, title=_("Rapport de traçabilité — enregistrement %(n)s") % {"n": r["recording"].pk},
                  footer=_("Témoin — traçabilité de l'enregistrement n° %(n)s — %(generated)s") % {
                      "n": r["recording"].pk, "generated": r["generated"]})
