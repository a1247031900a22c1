"""The compliance report as a PDF (reportlab), for the DPO to hand to the CNIL.

The PDF shows the signed JSON report's content and its signature: the JSON document is the one
that verifies (``compliance_report_verify`` or any Ed25519 tool, with the key published on
/journal/cle-publique/).
"""
from __future__ import annotations

import datetime as dt
import json

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Spacer, Table

from ..pdf import _FIELDS, _TABLE, _build, _styles, hash_cell, p


def _local(value: str | None) -> str:
    if not value:
        return "—"
    from django.utils import timezone

    return timezone.localtime(dt.datetime.fromisoformat(value)).strftime("%d/%m/%Y %H:%M")


def compliance_report_pdf(document: dict) -> bytes:
    s = _styles()
    r = json.loads(document["payload"])
    org = r["organisation"]
    audit = r["audit"]
    ok = audit["ok"]
    story = [
        p("Rapport de conformité — caméras individuelles", s["title"]),
        p(f"{org['name']} ({org['slug']}) — contrôle n° {audit['id']} du {_local(audit['checked_at'])}, "
          f"édité le {_local(r['generated_at'])}.", s["small"]),
        Spacer(1, 3 * mm),
    ]
    if audit.get("could_not_look"):
        story.append(p(f"Le contrôle n'a pas pu tout vérifier : {audit['could_not_look']}", s["bad"]))
    elif ok:
        story.append(p("Toutes les règles vérifiées sont respectées.", s["ok"]))
    else:
        story.append(p(f"{len(r['violations'])} écart(s) constaté(s).", s["bad"]))
    story.append(p("Règles vérifiées", s["h2"]))
    data = [[p(h, s["head"]) for h in ("Règle", "Textes", "Résultat")]]
    for rule in r["rules"]:
        data.append([p(rule["title"], s["cell"]), p(rule["articles"], s["cell"]),
                     p("respectée" if rule["holds"] else "écart", s["cell"])])
    story.append(Table(data, colWidths=[120 * mm, 40 * mm, 26 * mm], repeatRows=1, style=_TABLE))
    if r["violations"]:
        story.append(p("Écarts", s["h2"]))
        data = [[p(h, s["head"]) for h in ("Règle", "Objet", "Constat", "Depuis")]]
        for v in r["violations"][:500]:
            data.append([p(v["rule"], s["cell"]), p(v["subject"], s["cell"]), p(v["message"], s["small"]),
                         p(_local(v["since"]), s["cell"])])
        story.append(Table(data, colWidths=[34 * mm, 40 * mm, 86 * mm, 26 * mm], repeatRows=1, style=_TABLE))
        if len(r["violations"]) > 500:
            story.append(p(f"… et {len(r['violations']) - 500} autres (voir le rapport JSON signé).", s["small"]))
    story.append(p("Paramètres", s["h2"]))
    head = r.get("custody_head") or {}
    story.append(Table([
        [p("Cadre juridique", s["head"]), p(org["jurisdiction"], s["cell"])],
        [p("Durée de conservation", s["head"]), p(org["retention"], s["cell"])],
        [p("Conservation du journal", s["head"]), p(f"{r['custody_retention_years']} ans", s["cell"])],
        [p("Tête du journal", s["head"]), p(f"entrée n° {head.get('seq', '—')}", s["cell"])],
        [p("Empreinte de la tête", s["head"]), hash_cell(head.get("hash", ""), s["mono"])],
    ], colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(p("Signature", s["h2"]))
    story.append(Table([
        [p("Algorithme", s["head"]), p(document["algorithm"], s["cell"])],
        [p("Clé (empreinte SHA-256)", s["head"]), hash_cell(document["key_id"], s["mono"])],
        [p("Signature", s["head"]), p(document["signature"], s["mono"])],
    ], colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(Spacer(1, 3 * mm))
    story.append(p("La version JSON de ce rapport porte la même signature Ed25519 sur son champ « payload » ; la clé "
                   "publique du déploiement est publiée sur /journal/cle-publique/ et par « manage.py custody "
                   "export-key ».", s["small"]))
    return _build(story, pagesize=A4, title=f"Rapport de conformité — {org['name']}",
                  footer=f"Témoin — conformité — {org['slug']} — contrôle n° {audit['id']}")
